// The volunteer console: renders ConsoleUpdate from /api/events (decision, holds, status).
// Dynamic text is written in both languages (<span lang>) so switching needs no re-render.
"use strict";
(() => {
  const gp = window.gatepost;
  const { T, $, $$, both, say, word, reasonPair, agePair, celsius, clockTime } = gp;
  const { setContent, element, message, showTab, act, needVolunteer, clearProblems } = gp;
  const { problemSlot, onDuty, volunteer, renderDuty } = gp;
  const OLD_DECISION_S = 60;

  // --- the decision ------------------------------------------------------------------

  function renderDecision() {
    const panel = $("#decision");
    const decision = gp.state && gp.state.decision;
    panel.dataset.outcome = decision ? decision.outcome : "none";
    setContent($(".outcome", panel), say(decision ? decision.outcome : "none"));
    const reasons = setContent($(".reasons", panel));
    const temperature = setContent($(".temperature", panel));
    const who = setContent($(".who", panel));
    if (!decision) { renderDecisionAge(); return; }
    for (const code of decision.reasons) reasons.append(element("li", {}, both(reasonPair(code))));
    temperature.textContent = celsius(decision.temperature_c);
    if (decision.subject === "vehicle" && decision.vehicle_plate) {
      who.append(element("small", {}, say("plate")), decision.vehicle_plate);
    } else if (decision.masked_name) {
      who.append(element("small", {}, say("compareId")), decision.masked_name);
    }
    renderDecisionAge();
  }

  function renderDecisionAge() {
    const panel = $("#decision");
    const meta = setContent($(".meta", panel));
    const decision = gp.state && gp.state.decision;
    if (!decision) { panel.dataset.old = "false"; return; }
    const age = (Date.now() - new Date(decision.at).getTime()) / 1000;
    panel.dataset.old = String(age > OLD_DECISION_S);
    meta.append(both(T.at, { time: clockTime(decision.at), age: agePair(age) }));
    if (decision.colour) meta.append(" · ", say("codeColour"), " ", say(decision.colour));
  }

  // --- the holds ---------------------------------------------------------------------

  function renderHolds() {
    const list = $("#hold-list");
    const holds = gp.state ? gp.state.holds : [];
    const wanted = new Set(holds.map((hold) => hold.hold_id));
    // Keyed by hold id: a card being typed into (re-measure) survives other updates.
    for (const card of $$(".hold", list)) {
      if (!wanted.has(card.dataset.holdId)) card.remove();
    }
    for (const hold of holds) {
      if (!list.querySelector(`[data-hold-id="${CSS.escape(hold.hold_id)}"]`)) list.append(holdCard(hold));
    }
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
    const id = hold.hold_id;
    card.dataset.holdId = id;
    card.dataset.testid = `hold-${id}`;
    for (const code of hold.reasons) $(".reasons", card).append(element("li", {}, both(reasonPair(code))));
    $(".temperature", card).textContent = celsius(hold.temperature_c);
    if (hold.masked_name) $(".who", card).append(element("small", {}, say("compareId")), hold.masked_name);
    const meta = $(".meta", card);
    meta.append(clockTime(hold.at));
    if (hold.colour) meta.append(" · ", say("codeColour"), " ", say(hold.colour));
    const remeasure = $(".remeasure", card);
    const input = $("input", remeasure);
    input.dataset.testid = `remeasure-temperature-${id}`;
    for (const button of $$("[data-resolution]", card)) {
      const resolution = button.dataset.resolution;
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
    const confirm = $('[data-remeasure="confirm"]', card);
    confirm.dataset.testid = `remeasure-confirm-${id}`;
    confirm.addEventListener("click", () => {
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
    const volunteerId = needVolunteer();
    if (!volunteerId) return Promise.resolve();
    const body = { volunteer_id: volunteerId, ...fields };
    const path = `/api/holds/${encodeURIComponent(hold.hold_id)}/resolve`;
    return act(button, root, path, body, (update) => {
      render(update);
      message("ok", both(word(fields.resolution)));
    });
  }

  // --- alerts and status bar ---------------------------------------------------------

  let link = "connecting";  // connecting | live | lost

  function renderAlerts() {
    const box = setContent($("#alerts"));
    if (link === "lost") box.append(element("p", { className: "bad" }, say("linkLost")));
    if (!gp.state) return;
    if (!gp.state.node.broker_connected) box.append(element("p", { className: "warn" }, say("brokerDown")));
    if (onDuty().length === 0) {
      const go = element("button", { type: "button" }, say("toShift"));
      go.addEventListener("click", () => showTab("shift"));
      box.append(element("p", { className: "warn", dataset: { testid: "no-volunteer" } }, say("noVolunteer"), go));
    } else if (!volunteer()) {
      box.append(element("p", { className: "warn" }, say("chooseVolunteer")));
    }
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
        both(word(name)), " ", say(deviceState), " ");
      devices.append(item, " ");
    }
    const outbox = setContent($("#status-outbox"));
    outbox.className = node.outbox_depth > 0.8 * node.outbox_capacity ? "bad" : "";
    const count = (n) => n.toLocaleString("en-US");
    outbox.append(say("outbox", { depth: count(node.outbox_depth), capacity: count(node.outbox_capacity) }));
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
    setContent(indicator, say(mode === "lost" ? "linkLost" : mode));
    $("#decision").dataset.live = String(mode === "live");
    renderAlerts();
  }

  function render(update) {
    gp.state = update;
    renderDecision();
    renderHolds();
    renderDuty();
    renderStatus();
    renderAlerts();
  }

  // --- start -------------------------------------------------------------------------

  async function loadReasons() {
    try {
      const response = await fetch("/api/reasons");
      if (!response.ok) throw new Error(String(response.status));
      gp.reasonWords = await response.json();
      if (gp.state) {
        // Cards drawn before the words arrived show codes; redraw them (this happens at
        // start, before anyone types into a card).
        $$("#hold-list .hold").forEach((card) => card.remove());
        render(gp.state);
      }
    } catch (error) {
      setTimeout(loadReasons, 5000);
    }
  }

  function connect() {
    const source = new EventSource("/api/events");
    source.onopen = () => setLink("live");
    source.onmessage = (event) => {
      setLink("live");
      render(JSON.parse(event.data));
    };
    source.onerror = () => {
      setLink("lost");
      // EventSource retries by itself unless the server answered with an error.
      if (source.readyState === EventSource.CLOSED) setTimeout(connect, 3000);
    };
  }

  Object.assign(gp, { render, renderAlerts });
  gp.applyLanguage(gp.language());
  setLink("connecting");
  loadReasons();
  connect();
  setInterval(renderDecisionAge, 1000);
})();
