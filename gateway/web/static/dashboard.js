// The live board: renders DashboardSnapshot from /api/stream (gates, alarms, passages).
// Dynamic text is written in both languages (<span lang>) so switching needs no re-render.
"use strict";
(() => {
  const gp = window.gatepost;
  const { $, say, both, pairOf, reasonWords, fillWords, agePair, number } = gp;
  const { partsIn, clockIn, whenIn, zoneName, zoneOf } = gp;
  const { setContent, element, message, api, failureWords } = gp;
  const RECONNECT_MS = 3000;

  // --- gates -------------------------------------------------------------------------

  function renderSites() {
    const box = setContent($("#sites"));
    for (const site of gp.state.sites) {
      const section = element("section", { className: "site", dataset: { testid: `site-${site.site}` } });
      const start = partsIn(site.timezone, site.period_start);
      section.append(element("header", {},
        element("h3", {}, site.site),
        element("span", { className: "since" }, say("gate.since", { time: `${start.hh}:${start.mi}` })),
      ));
      section.append(totals(site));
      const grid = element("div", { className: "gates" });
      for (const gate of site.gates) grid.append(gateCard(site, gate));
      section.append(grid);
      box.append(section);
    }
  }

  function totals(site) {
    const figure = (key, value, testid, alert = false) => element("div",
      { className: alert && value > 0 ? "figure alert" : "figure", dataset: { testid } },
      element("b", {}, number(value)), say(key));
    const t = site.totals;
    return element("div", { className: "totals", dataset: { testid: `totals-${site.site}` } },
      element("span", { className: "label" }, say("gate.siteTotals")),
      figure("gate.personChecks", t.person_checks, `total-persons-${site.site}`),
      figure("gate.vehicleChecks", t.vehicle_checks, `total-vehicles-${site.site}`),
      figure("gate.fever", t.fever, `total-fever-${site.site}`, true),
      figure("gate.turnedBack", t.turned_back, `total-turned-back-${site.site}`),
      figure("gate.openHolds", site.open_holds, `total-holds-${site.site}`, true));
  }

  function gateCard(site, gate) {
    const card = $("#gate-template").content.firstElementChild.cloneNode(true);
    fillWords(card);
    card.dataset.testid = `gate-${site.site}-${gate.node}`;
    card.dataset.status = gate.status;
    $(".name", card).textContent = gate.node;
    setContent($(".status", card), say(`gate.${gate.status}`));
    if (!gate.expected) $(".status", card).append(" · ", say("gate.notListed"));
    $(".persons", card).textContent = number(gate.counts.person_checks);
    $(".vehicles", card).textContent = number(gate.counts.vehicle_checks);
    $(".fever-count", card).textContent = number(gate.counts.fever);
    $(".fever", card).classList.toggle("alert", gate.counts.fever > 0);
    $(".hold-count", card).textContent = number(gate.open_holds);
    $(".holds", card).classList.toggle("alert", gate.open_holds > 0);
    const faults = $(".faults", card);
    faults.hidden = gate.faults.length === 0;
    for (const fault of gate.faults) faults.append(faultItem(site, gate, fault));
    const meta = $(".meta", card);
    meta.append(gate.volunteers_on_duty.length ? say("gate.onDuty", { id: gate.volunteers_on_duty.join(", ") }) : say("gate.nobodyOnDuty"));
    meta.append(" · ", element("span", { className: "seen", dataset: { seen: gate.last_seen || "" } }));
    return card;
  }

  // A device fault the node has not cleared: the part and the fault in words (a part or
  // fault the catalogue does not name is shown as the node sent it), the node's detail
  // for a technician on hover.
  function faultItem(site, gate, fault) {
    const term = (key, slug) => (gp.T[key] ? pairOf(key) : [slug, slug]);
    return element("li", {
      className: "fault", title: fault.detail || "",
      dataset: { testid: `fault-${site.site}-${gate.node}-${fault.device}-${fault.fault}`, device: fault.device },
    }, say("gate.fault", {
      device: term(`device.${fault.device}`, fault.device),
      fault: term(`fault.${fault.fault}`, fault.fault),
    }));
  }

  // Ages and the clock move on between frames: redrawn every second.
  function renderAges() {
    for (const span of document.querySelectorAll(".gate .seen")) {
      const seen = span.dataset.seen;
      setContent(span, seen
        ? say("gate.lastSeen", { age: agePair((Date.now() - new Date(seen).getTime()) / 1000) })
        : say("gate.neverSeen"));
    }
    renderClock();
  }

  // The sites' own time, named ("北京时间 08:00:00"): one clock per zone the sites are in.
  function renderClock() {
    // A depot token has no snapshot: the zones of the depots it sees.
    const sites = (gp.state && gp.state.sites) || gp.depotZones || [];
    const zones = [...new Set(sites.map((site) => site.timezone))];
    const clock = setContent($("#clock"));
    clock.dataset.zones = zones.join(" ");
    zones.forEach((zone, i) => clock.append(i ? " · " : "",
      say("page.clock", { zone: zoneName(zone), time: clockIn(zone) })));
  }

  // --- alarms ------------------------------------------------------------------------

  function renderAlarms() {
    const list = setContent($("#alarm-list"));
    const alarms = gp.state.alarms;
    for (const alarm of alarms) list.append(alarmItem(alarm));
    $("#no-alarms").hidden = alarms.length > 0;
    // Not yet seen to: raised, or a state added later (escalated) without an acknowledgement.
    const raised = alarms.filter((alarm) => !alarm.acknowledged_at && alarm.state !== "cleared").length;
    const count = $("#alarm-count");
    count.hidden = raised === 0;
    count.textContent = String(raised);
  }

  // An alarm's text from the catalogue, by its words' key (kind or kind.variant) and values;
  // one the catalogue does not have is said as the place and the kind's name.
  function alarmText(alarm) {
    const { key, values } = alarm.words;
    const kind = Array.isArray(gp.T[`kind.${alarm.kind}`]) ? pairOf(`kind.${alarm.kind}`) : [alarm.kind, alarm.kind];
    const vars = { ...values, kind };
    return say(gp.T[`alarm.${key}`] ? `alarm.${key}` : "alarm.other", vars);
  }

  // An alarm's item, with an acknowledge button while nobody acknowledged it. Options:
  // testid, the prefix of its test ids; zone, the time zone of its times (else its site's);
  // acknowledge, false where the token may not; acknowledged, run once it is. A severity,
  // kind or state the catalogue does not have is shown as the gateway named it.
  function alarmItem(alarm, options = {}) {
    const { testid = "alarm", zone = zoneOf(alarm.site), acknowledge: may = true, acknowledged } = options;
    const term = (key, slug) => (Array.isArray(gp.T[key]) ? say(key) : both([slug, slug]));
    const place = alarm.node ? `${alarm.site} · ${alarm.node}` : alarm.site;
    const item = element("li", {
      className: "alarm",
      dataset: { testid: `${testid}-${alarm.alarm_id}`, severity: alarm.severity, state: alarm.state, kind: alarm.kind },
    },
      element("div", { className: "what" },
        element("b", { className: "severity" }, term(`severity.${alarm.severity}`, alarm.severity)), " ",
        element("strong", {}, term(`kind.${alarm.kind}`, alarm.kind)), " ",
        element("span", { className: "place" }, place)),
      element("div", { className: "text" }, alarmText(alarm)),
      element("div", { className: "meta" }, both(whenIn(zone, alarm.raised_at))));
    if (!["raised", "acknowledged", "cleared"].includes(alarm.state)) {
      $(".meta", item).append(" · ", both([alarm.state, alarm.state]));  // a state added later
    }
    if (alarm.escalated_at) {
      item.dataset.escalated = "true";
      $(".meta", item).append(" · ", element("b", { className: "escalated" },
        say("alarm.escalated", { time: whenIn(zone, alarm.escalated_at) })));
    }
    if (alarm.acknowledged_at) {
      $(".meta", item).append(" · ", say("alarm.acknowledgedBy", {
        who: alarm.acknowledged_by || "", time: whenIn(zone, alarm.acknowledged_at),
      }));
    } else if (alarm.state !== "cleared" && may) {
      const button = element("button", {
        type: "button", className: "primary",
        dataset: { testid: `${testid === "alarm" ? "acknowledge" : `${testid}-acknowledge`}-${alarm.alarm_id}` },
      }, say("alarm.acknowledge"));
      button.addEventListener("click", () => acknowledge(button, alarm, acknowledged));
      item.append(button);
    }
    return item;
  }

  async function acknowledge(button, alarm, acknowledged) {
    button.disabled = true;
    try {
      await api(`/api/alarms/${encodeURIComponent(alarm.alarm_id)}/acknowledge`, { method: "POST" });
      message("ok", say("alarm.acknowledged"));
      // The stream brings the alarm's new state to the board; other views ask again.
      if (acknowledged) acknowledged();
    } catch (failure) {
      button.disabled = false;
      if (!gp.tokenProblem(failure)) message("bad", failureWords(failure));
    }
  }

  // --- passages ----------------------------------------------------------------------

  function renderPassages() {
    const list = setContent($("#passage-list"));
    for (const passage of gp.state.passages) {
      const temperature = passage.temperature_c === null ? "" : `${passage.temperature_c.toFixed(1)} °C`;
      const reasons = element("span", { className: "reasons" });
      passage.reasons.forEach((code, i) => reasons.append(i ? "；" : "", reasonWords(code)));
      list.append(element("li", {
        className: "passage",
        dataset: { testid: `passage-${passage.event_id}`, outcome: passage.outcome, fever: String(passage.fever) },
      },
        element("span", { className: "time" }, both(whenIn(zoneOf(passage.site), passage.node_time))),
        element("span", { className: "where" }, passage.node),
        element("b", { className: "outcome" }, say(`outcome.${passage.outcome}`)),
        element("span", { className: "colour", dataset: { colour: passage.colour || "" } },
          passage.colour ? say(`colour.${passage.colour}`) : ""),
        element("span", { className: "temperature" }, temperature),
        element("span", { className: "subject" }, say(`subject.${passage.subject}`), " ", say(`direction.${passage.direction}`)),
        reasons));
    }
    $("#no-passages").hidden = gp.state.passages.length > 0;
  }

  function render(snapshot) {
    gp.state = snapshot;
    if (gp.onSnapshot) gp.onSnapshot(snapshot);  // depots.js: its alarms may have changed
    renderSites();
    renderAlarms();
    renderPassages();
    renderAges();
    gp.reportSites(snapshot.sites.map((site) => site.site));
  }

  // --- the connection ----------------------------------------------------------------

  let source = null;

  function setLink(mode) {
    const indicator = $("#link");
    indicator.dataset.link = mode;
    setContent(indicator, say(`link.${mode}`));
    document.body.dataset.link = mode;
  }

  // A refused token shows the token form; true when `failure` was about the token.
  function tokenProblem(failure) {
    if (failure.status !== 401 && failure.status !== 403) return false;
    if (source) source.close();
    source = null;
    showTokenForm(failure.status === 403 ? "error.roleRefused" : gp.token() ? "error.tokenRefused" : "error.noToken");
    return true;
  }

  function showTokenForm(problem) {
    setContent($("#token-problem"), say(problem));
    $("#token-form").hidden = false;
    setLink("connecting");
  }

  // One snapshot first: EventSource cannot tell a refused token from a dropped line.
  async function connect() {
    if (!gp.token()) { showTokenForm("error.noToken"); return; }
    try {
      render(await (await api("/api/dashboard")).json());
    } catch (failure) {
      // A token that may not see the gates may still see the depots (depots.js).
      if (failure.status === 403 && await gp.depotsOnly()) { $("#token-form").hidden = true; return; }
      if (!tokenProblem(failure)) { setLink("lost"); setTimeout(connect, RECONNECT_MS); }
      return;
    }
    $("#token-form").hidden = true;
    const asked = document.body.dataset.view;  // asked before the token
    if (asked === "depots" || asked === "stock") gp.showView(asked);
    source = new EventSource(`/api/stream?access_token=${encodeURIComponent(gp.token())}`);
    source.onopen = () => setLink("live");
    source.onmessage = (event) => {
      setLink("live");
      render(JSON.parse(event.data));
    };
    source.onerror = () => {
      setLink("lost");
      // EventSource retries by itself unless the server answered with an error status.
      if (source && source.readyState === EventSource.CLOSED) {
        source = null;
        setTimeout(connect, RECONNECT_MS);
      }
    };
  }

  $("#token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("#token-input");
    if (!input.value.trim()) return;
    gp.setToken(input.value.trim());
    input.value = "";
    connect();
  });

  Object.assign(gp, { render, tokenProblem, connect, alarmItem });
  setLink("connecting");
  setInterval(renderAges, 1000);
  // reports.js (loaded next) defines gp.reportSites before the first frame can arrive.
  setTimeout(connect, 0);
})();
