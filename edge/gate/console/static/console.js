// The volunteer console: renders ConsoleUpdate from /api/events (decision, holds, status).
// Dynamic text is written in both languages (<span lang>) so switching needs no re-render.
"use strict";
(() => {
  const gp = window.gatepost;
  const { $, $$, both, say, word, fillWords, reasonPair, agePair, celsius, clockTime } = gp;
  const { setContent, element, message, showTab, act, needVolunteer, clearProblems } = gp;
  const { problemSlot, renderDuty } = gp;
  const rules = gp.holdRules;
  const OLD_DECISION_S = 60;
  const PROMPT_S = 5;  // how long "scan again", "step closer"… stay up

  // --- what a hold or decision looks like ----------------------------------------------

  // "deny" for a refused (forged, revoked…) or red code even when the gate holds the
  // person: officers expect ✕ there. The event's outcome is not changed.
  function lookOf(outcome, reasons) {
    if (outcome === "deny" || reasons.some((code) => rules.stop.includes(code))) return "deny";
    return outcome;
  }

  const isUrgent = (reasons) => reasons.some((code) => rules.urgent.includes(code));

  // The same rule as hold_rules.offered(): passing ways need every reason to allow them,
  // the others one reason to ask for them; turning back is always possible.
  function offeredFor(reasons) {
    const relevant = reasons.filter((code) => !rules.neutral.includes(code));
    const allowed = relevant.map((code) => rules.offered[code] || ["referred", "turned-back"]);
    return rules.order.filter((way) => (rules.passing.includes(way)
      ? allowed.every((ways) => ways.includes(way))
      : way === "turned-back" || allowed.some((ways) => ways.includes(way))));
  }

  function who(node, item) {
    if (item.subject === "vehicle" && item.vehicle_plate) {
      node.append(element("small", {}, say("plate")), item.vehicle_plate);
    } else if (item.masked_name) {
      node.append(element("small", {}, say("compareId")), item.masked_name);
    }
  }

  // --- the big panel: a code waiting for its temperature, or the latest decision --------

  let waitingSeen = null;  // {key, receivedAt, live}: the wait on screen and when it came

  function renderNow() {
    const waiting = gp.state && gp.state.waiting;
    if (waiting) renderWaiting(waiting);
    else { waitingSeen = null; renderDecision(); }
  }

  function renderWaiting(waiting) {
    const panel = $("#decision");
    const key = waiting.scanned_at;
    if (!waitingSeen || waitingSeen.key !== key) {
      waitingSeen = { key, receivedAt: Date.now(), live: !firstFrame };
    }
    panel.dataset.outcome = "waiting";
    panel.dataset.look = "waiting";
    panel.dataset.old = "false";
    setContent($(".outcome", panel), say("outcome.waiting"));
    $(".urgent", panel).hidden = true;
    const reasons = setContent($(".reasons", panel));
    if (waiting.colour) reasons.append(element("li", {}, say("codeColour"), " ", say(`colour.${waiting.colour}`)));
    setContent($(".temperature", panel));
    setContent($(".meta", panel));
    who(setContent($(".who", panel)), waiting);
    renderWaitingLeft();
  }

  // Seconds left, counted from when the wait reached this page (a wait pushed live is
  // seconds old at most), so a tablet whose clock is off still counts right. A page that
  // opens during a wait has only the tablet's clock to go by.
  function renderWaitingLeft() {
    const waiting = gp.state && gp.state.waiting;
    if (!waiting || !waitingSeen) return;
    const deadline = new Date(waiting.deadline).getTime();
    const total = (deadline - new Date(waiting.scanned_at).getTime()) / 1000;
    const left = waitingSeen.live
      ? total - (Date.now() - waitingSeen.receivedAt) / 1000
      : Math.min(total, (deadline - Date.now()) / 1000);
    const seconds = Math.max(0, Math.ceil(left));
    const countdown = $("#decision .countdown");
    countdown.hidden = false;
    if (countdown.dataset.secondsLeft !== String(seconds)) {
      countdown.dataset.secondsLeft = String(seconds);
      setContent(countdown, say("secondsLeft", { n: seconds }));
    }
  }

  function renderDecision() {
    const panel = $("#decision");
    const decision = gp.state && gp.state.decision;
    const countdown = $(".countdown", panel);
    countdown.hidden = true;
    delete countdown.dataset.secondsLeft;
    panel.dataset.outcome = decision ? decision.outcome : "none";
    panel.dataset.look = decision ? lookOf(decision.outcome, decision.reasons) : "none";
    setContent($(".outcome", panel), say(`outcome.${panel.dataset.look}`));
    const urgent = $(".urgent", panel);
    urgent.hidden = !(decision && isUrgent(decision.reasons));
    setContent(urgent, say("urgent"));
    const reasons = setContent($(".reasons", panel));
    const temperature = setContent($(".temperature", panel));
    const name = setContent($(".who", panel));
    if (!decision) { renderDecisionAge(); return; }
    for (const code of decision.reasons) reasons.append(element("li", {}, both(reasonPair(code))));
    temperature.textContent = celsius(decision.temperature_c);
    who(name, decision);
    renderDecisionAge();
  }

  function renderDecisionAge() {
    if (gp.state && gp.state.waiting) return;
    const panel = $("#decision");
    const meta = setContent($(".meta", panel));
    const decision = gp.state && gp.state.decision;
    if (!decision) { panel.dataset.old = "false"; return; }
    const age = (Date.now() - new Date(decision.at).getTime()) / 1000;
    panel.dataset.old = String(age > OLD_DECISION_S);
    meta.append(say("at", { time: clockTime(decision.at), age: agePair(age) }));
    if (decision.colour) meta.append(" · ", say("codeColour"), " ", say(`colour.${decision.colour}`));
  }

  // --- prompts: "scan again", "step closer", "step back" for a few seconds ------------

  let promptSeen = { key: null, until: 0 };

  function renderPrompt() {
    const prompt = gp.state && gp.state.prompt;
    const box = $("#prompt");
    if (prompt) {
      const key = `${prompt.kind} ${prompt.at}`;
      if (promptSeen.key !== key) {
        // Pushed live: fresh. In the first frame (a page opened later) it may be old.
        const age = firstFrame ? (Date.now() - new Date(prompt.at).getTime()) / 1000 : 0;
        promptSeen = { key, until: Date.now() + (PROMPT_S - Math.max(0, age)) * 1000 };
        box.dataset.kind = prompt.kind;
        setContent(box, say(`prompt.${prompt.kind}`));
      }
    }
    box.hidden = !prompt || Date.now() >= promptSeen.until;
  }

  // --- the holds: the newest, most likely the person at the gate, first ---------------

  function renderHolds() {
    const list = $("#hold-list");
    const holds = gp.state ? [...gp.state.holds] : [];
    holds.sort((a, b) => new Date(b.at).getTime() - new Date(a.at).getTime());
    const wanted = new Set(holds.map((hold) => hold.hold_id));
    // Keyed by hold id: a card being typed into (re-measure) survives other updates.
    for (const card of $$(".hold", list)) {
      if (!wanted.has(card.dataset.holdId)) card.remove();
    }
    holds.forEach((hold, i) => {
      const card = list.querySelector(`[data-hold-id="${CSS.escape(hold.hold_id)}"]`) || holdCard(hold);
      // Only a card out of place moves (moving one would take the focus from its input).
      if (list.children[i] !== card) list.insertBefore(card, list.children[i] || null);
    });
    $("#no-holds").hidden = holds.length > 0;
    const count = $("#hold-count");
    count.hidden = holds.length === 0;
    count.textContent = String(holds.length);
    const registering = gp.registeringHold();
    if (registering && !wanted.has(registering.hold_id)) {
      gp.setRegisteringHold(null);
      message("bad", say("holdGone"));
    }
  }

  function holdCard(hold) {
    const card = $("#hold-template").content.firstElementChild.cloneNode(true);
    fillWords(card);
    const id = hold.hold_id;
    card.dataset.holdId = id;
    card.dataset.testid = `hold-${id}`;
    card.dataset.look = lookOf("hold", hold.reasons);
    setContent($(".look", card), say(`outcome.${card.dataset.look}`));
    const urgent = $(".urgent", card);
    urgent.hidden = !isUrgent(hold.reasons);
    setContent(urgent, say("urgent"));
    for (const code of hold.reasons) $(".reasons", card).append(element("li", {}, both(reasonPair(code))));
    $(".temperature", card).textContent = celsius(hold.temperature_c);
    who($(".who", card), hold);
    const meta = $(".meta", card);
    meta.append(clockTime(hold.at));
    if (hold.colour) meta.append(" · ", say("codeColour"), " ", say(`colour.${hold.colour}`));
    const remeasure = $(".remeasure", card);
    const input = $("input", remeasure);
    input.dataset.testid = `remeasure-temperature-${id}`;
    const offered = offeredFor(hold.reasons);
    for (const button of $$("[data-resolution]", card)) {
      const resolution = button.dataset.resolution;
      if (!offered.includes(resolution)) { button.remove(); continue; }
      button.dataset.testid = `resolve-${resolution}-${id}`;
      button.addEventListener("click", () => {
        if (resolution === "released") {
          remeasure.hidden = !remeasure.hidden;
          if (!remeasure.hidden) input.focus();
        } else if (resolution === "registered") {
          gp.setRegisteringHold(hold);
          showTab("register");
        } else {
          resolve(button, card, hold, { resolution });
        }
      });
    }
    // A supervisor may let through a person whose code was refused, where the site allows it.
    const override = $("[data-override]", card);
    override.dataset.testid = `resolve-override-${id}`;
    override.hidden = !(gp.me && gp.me.role === "supervisor" && gp.state.node.override_allowed
      && hold.reasons.some((code) => rules.overridable.includes(code)));
    override.addEventListener("click", () => resolve(override, card, hold, { resolution: "released", override: true }));
    const confirm = $('[data-remeasure="confirm"]', card);
    confirm.dataset.testid = `remeasure-confirm-${id}`;
    confirm.addEventListener("click", () => {
      // Empty: the gate releases on the person's new reading at its thermometer. A typed
      // temperature is taken only while the thermometer is faulty (the gate says so).
      if (input.value.trim() === "" && !input.validity.badInput) {
        resolve(confirm, card, hold, { resolution: "released" });
        return;
      }
      const temperature = input.valueAsNumber;
      if (Number.isNaN(temperature)) {
        clearProblems(card);
        problemSlot(card, "temperature_c").append(say("enterTemperature"));
        input.setAttribute("aria-invalid", "true");
        return;
      }
      resolve(confirm, card, hold, { resolution: "released", temperature_c: temperature });
    });
    $('[data-remeasure="cancel"]', card).addEventListener("click", () => {
      remeasure.hidden = true;
      clearProblems(card);
    });
    return card;
  }

  function resolve(button, root, hold, fields) {
    if (!needVolunteer()) return Promise.resolve();
    const body = { ...fields };
    const path = `/api/holds/${encodeURIComponent(hold.hold_id)}/resolve`;
    return act(button, root, path, body, (update) => {
      render(update);
      message("ok", say(fields.override ? "resolution.override" : `resolution.${fields.resolution}`));
    });
  }

  // --- alerts and status bar ---------------------------------------------------------

  let link = "connecting";  // connecting | live | lost

  function renderAlerts() {
    const box = setContent($("#alerts"));
    if (!gp.me) {
      const go = element("button", { type: "button" }, say("toShift"));
      go.addEventListener("click", () => showTab("shift"));
      box.append(element("p", { className: "warn", dataset: { testid: "no-volunteer" } }, say("signIn"), go));
      return;
    }
    if (link === "lost") box.append(element("p", { className: "bad" }, say("link.lost")));
    if (!gp.state) return;
    if (!gp.state.node.broker_connected) box.append(element("p", { className: "warn" }, say("brokerDown")));
  }

  function renderStatus() {
    if (!gp.state) return;
    const node = gp.state.node;
    $("#place-name").textContent = `${node.node} · ${node.site}`;
    const broker = setContent($("#status-broker"));
    broker.className = node.broker_connected ? "ok" : "bad";
    broker.append(say(node.broker_connected ? "brokerOk" : "brokerDown"));
    const devices = setContent($("#status-devices"));
    for (const [name, deviceState] of Object.entries(node.devices)) {
      const item = element("span", { className: deviceState === "ok" ? "ok" : "bad" },
        say(`device.${name}`), " ", say(`state.${deviceState}`));
      devices.append(item, " ");
    }
    const outbox = setContent($("#status-outbox"));
    const nearlyFull = node.outbox_depth > 0.8 * node.outbox_capacity;
    outbox.className = nearlyFull ? "bad" : "";
    outbox.append(say(nearlyFull ? "outboxNearlyFull" : "outbox", { depth: node.outbox_depth.toLocaleString("en-US") }));
    const ids = node.volunteers_on_duty.length ? node.volunteers_on_duty.join(", ") : word("nobody");
    setContent($("#status-volunteers"), say("volunteers", { ids }));
    const trust = setContent($("#status-trust"));
    const age = node.trust_list_age_s;
    trust.className = age === null || age > 86400 ? "warn" : "";
    trust.append(age === null ? say("trustNone") : say("trustAge", { age: agePair(age) }));
  }

  function setLink(mode) {
    link = mode;
    const indicator = $("#link");
    indicator.dataset.link = mode;
    setContent(indicator, say(`link.${mode}`));
    $("#decision").dataset.live = String(mode === "live");
    renderAlerts();
  }

  let firstFrame = true;  // the frame a page gets on (re)connecting, not a live change

  function render(update) {
    gp.state = update;
    renderNow();
    renderPrompt();
    renderHolds();
    renderDuty();
    renderStatus();
    renderAlerts();
  }

  // --- start -------------------------------------------------------------------------

  let source = null;  // the live stream, open while a volunteer is signed in

  function connect() {
    if (source) return;
    $("#link").hidden = false;
    setLink("connecting");
    source = new EventSource("/api/events");
    firstFrame = true;
    source.onopen = () => setLink("live");
    source.onmessage = (event) => {
      setLink("live");
      render(JSON.parse(event.data));
      firstFrame = false;
    };
    source.onerror = () => {
      setLink("lost");
      firstFrame = true;
      // EventSource retries by itself unless the server answered with an error: a
      // 401 or 403 when the session ended, so ask who is signed in before going on.
      if (source.readyState === EventSource.CLOSED) {
        disconnect();
        setLink("lost");
        gp.checkSession();
      } else {
        // A stream the node ended because the session did: say so now, not on retry.
        fetch("/api/session").then((response) => {
          if (response.status === 401 || response.status === 403) gp.endSession();
        }, () => {});
      }
    };
  }

  function disconnect() {
    if (source) source.close();
    source = null;
    $("#link").hidden = true;  // nothing to follow without a volunteer signed in
  }

  function tick() {
    renderWaitingLeft();
    renderPrompt();
  }

  Object.assign(gp, { render, renderAlerts, offeredFor, connect, disconnect });
  fillWords();
  gp.applyLanguage(gp.language());
  gp.checkSession();
  setInterval(renderDecisionAge, 1000);
  setInterval(tick, 250);
})();
