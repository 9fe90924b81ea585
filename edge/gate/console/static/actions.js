// The console's actions: language, tabs, messages, POSTs to the node, who is acting.
"use strict";
(() => {
  const gp = window.gatepost;
  const { $, $$, both, say, word, reasonPair, setContent, element } = gp;
  const LANGUAGE_KEY = "gatepost.console.language";

  // --- language ----------------------------------------------------------------------

  function language() {
    const root = document.documentElement;
    const saved = localStorage.getItem(LANGUAGE_KEY);
    return saved === "zh" || saved === "en" ? saved : root.dataset.defaultLanguage;
  }

  function applyLanguage(lang) {
    const root = document.documentElement;
    root.dataset.lang = lang;
    root.lang = lang === "zh" ? "zh-CN" : "en";
    document.title = word("title")[lang === "zh" ? 0 : 1];
  }

  $("#language").addEventListener("click", () => {
    const next = document.documentElement.dataset.lang === "zh" ? "en" : "zh";
    localStorage.setItem(LANGUAGE_KEY, next);
    applyLanguage(next);
  });

  // --- tabs and messages -------------------------------------------------------------

  function showTab(name) {
    $$("[data-tab]").forEach((tab) => {
      if (tab.dataset.tab === name) tab.setAttribute("aria-current", "page");
      else tab.removeAttribute("aria-current");
    });
    $$("[data-view]").forEach((view) => { view.hidden = view.dataset.view !== name; });
    $("#message").hidden = true;
    const first = $(`[data-view="${name}"] input:not([type=radio])`);
    if (first && name !== "gate") first.focus();
  }

  $$("[data-tab]").forEach((tab) => tab.addEventListener("click", () => {
    if (tab.dataset.tab === "register") gp.setRegisteringHold(null);
    showTab(tab.dataset.tab);
  }));

  let messageTimer = 0;
  function message(kind, fragment) {
    const box = $("#message");
    box.dataset.kind = kind;
    setContent(box, fragment);
    box.hidden = false;
    clearTimeout(messageTimer);
    messageTimer = setTimeout(() => { box.hidden = true; }, kind === "ok" ? 6000 : 12000);
  }

  // --- talking to the node -----------------------------------------------------------

  async function send(path, body) {
    let response;
    try {
      response = await fetch(path, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
    } catch (error) {
      return { ok: false, kind: "network" };
    }
    let data = null;
    try { data = await response.json(); } catch (error) { data = null; }
    if (response.ok) return { ok: true, data };
    if (response.status === 409 && data) return { ok: false, kind: "refused", ...data };
    // No session, or its volunteer is no longer on duty: said, then the badge is asked for.
    if ((response.status === 401 || response.status === 403) && data) {
      return { ok: false, kind: "refused", session: true, ...data };
    }
    if (response.status === 422 && data) return { ok: false, kind: "invalid", problems: data.detail };
    return { ok: false, kind: "server", status: response.status };
  }

  // Marks each failing field of `root`; returns the words for the failure as a whole.
  function showFailure(root, result) {
    clearProblems(root);
    if (result.kind === "invalid") {
      for (const problem of result.problems) {
        const slot = problemSlot(root, problem.field);
        slot.append(both([problem.zh, problem.en]), " ");
        const input = root.querySelector(`[name="${problem.field}"]`);
        if (input) input.setAttribute("aria-invalid", "true");
      }
      return say("fixFields");
    }
    let words;
    if (result.kind === "refused") {
      // The detail is the node's English note for technicians: the Chinese view omits it.
      const detail = result.detail ? ` (${result.detail})` : "";
      const reason = reasonPair(result.reason);
      words = both(word("refused"), { reason: [reason[0], reason[1] + detail] });
    } else {
      words = say(result.kind, { status: result.status });
    }
    problemSlot(root, "").append(words.cloneNode(true));
    return words;
  }

  // The slot next to the field; failing that, the one of its parent path, then the form's.
  function problemSlot(root, field) {
    const parts = field ? field.split(".") : [];
    while (parts.length) {
      const slot = root.querySelector(`[data-error-for="${parts.join(".")}"]`);
      if (slot) return slot;
      parts.pop();
    }
    return root.querySelector('[data-error-for=""]');
  }

  function clearProblems(root) {
    $$("[data-error-for]", root).forEach((slot) => slot.replaceChildren());
    $$("[aria-invalid]", root).forEach((input) => input.removeAttribute("aria-invalid"));
  }

  async function act(button, root, path, body, onDone) {
    button.disabled = true;  // a gloved double tap must not send twice
    try {
      const result = await send(path, body);
      if (result.ok) {
        clearProblems(root);
        $("#message").hidden = true;  // an earlier failure no longer applies
        onDone(result.data);
      } else {
        const words = showFailure(root, result);
        if (result.session) endSession();
        message("bad", words);
      }
    } finally {
      button.disabled = false;
    }
  }

  // --- who is acting: the volunteer signed in on this device ----------------------------
  // The node knows who from the session cookie (HttpOnly: this script never sees it);
  // the page only shows who it is and asks for the badge when there is nobody.

  gp.me = null;  // {volunteer_id, masked_name, role} from /api/session

  function volunteer() { return gp.me ? gp.me.volunteer_id : null; }

  function needVolunteer() {
    if (gp.me) return gp.me.volunteer_id;
    endSession();
    message("bad", say("signIn"));
    return null;
  }

  function beginSession(who) {
    gp.me = who;
    renderDuty();
    gp.renderAlerts();
    gp.connect();
  }

  // Nobody signed in (any more): what the page showed of people goes with the session.
  function endSession() {
    if (gp.state) {
      window.location.reload();
      return;
    }
    gp.me = null;
    gp.disconnect();
    renderDuty();
    gp.renderAlerts();
    showTab("shift");
  }

  // Only the node's answer ends a session: an unreachable node is asked again later.
  async function checkSession() {
    let response;
    try {
      response = await fetch("/api/session");
    } catch (error) {
      setTimeout(checkSession, 3000);
      return;
    }
    if (response.ok) beginSession(await response.json());
    else if (response.status === 401 || response.status === 403) endSession();
    else setTimeout(checkSession, 3000);
  }

  async function signOut() {
    try { await fetch("/api/session", { method: "DELETE" }); } catch (error) { /* reload asks again */ }
    endSession();
  }

  function renderDuty() {
    const box = setContent($("#duty"));
    if (!gp.me) return;
    // One button, so the header stays one line on a portrait tablet: who, and sign out.
    const out = element("button", { type: "button", dataset: { testid: "sign-out" } },
      say("signOut", { name: gp.me.masked_name }));
    out.addEventListener("click", signOut);
    box.append(out);
  }

  Object.assign(gp, {
    language, applyLanguage, showTab, message, send, showFailure, problemSlot, clearProblems,
    act, volunteer, needVolunteer, beginSession, endSession, checkSession, renderDuty,
  });
})();
