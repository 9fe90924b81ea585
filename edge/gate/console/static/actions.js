// The console's actions: language, tabs, messages, POSTs to the node, who is acting.
"use strict";
(() => {
  const gp = window.gatepost;
  const { $, $$, both, say, word, reasonPair, setContent, element } = gp;
  const LANGUAGE_KEY = "gatepost.console.language";
  const VOLUNTEER_KEY = "gatepost.console.volunteer";

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
        message("bad", showFailure(root, result));
      }
    } finally {
      button.disabled = false;
    }
  }

  // --- who is acting -----------------------------------------------------------------

  function onDuty() { return gp.state ? gp.state.node.volunteers_on_duty : []; }

  function volunteer() {
    const ids = onDuty();
    if (ids.length === 1) return ids[0];
    const chosen = localStorage.getItem(VOLUNTEER_KEY);
    return ids.includes(chosen) ? chosen : null;
  }

  function needVolunteer() {
    const id = volunteer();
    if (id) return id;
    message("bad", say(onDuty().length ? "chooseVolunteer" : "noVolunteer"));
    return null;
  }

  function renderDuty() {
    const ids = onDuty();
    const box = setContent($("#duty"));
    if (ids.length === 0) return;
    box.append(element("span", {}, say("onDuty")));
    const current = volunteer();
    for (const id of ids) {
      const chip = element("button", { type: "button", dataset: { testid: `volunteer-${id}` } }, id);
      chip.setAttribute("aria-pressed", String(id === current));
      chip.addEventListener("click", () => {
        localStorage.setItem(VOLUNTEER_KEY, id);
        renderDuty();
        gp.renderAlerts();
      });
      box.append(chip);
    }
  }


  Object.assign(gp, {
    VOLUNTEER_KEY, language, applyLanguage, showTab, message, send, showFailure,
    problemSlot, clearProblems, act, onDuty, volunteer, needVolunteer, renderDuty,
  });
})();
