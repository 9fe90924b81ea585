// The depots view: every depot and zone at a glance (GET /api/depots), and a zone's day:
// its chart (depot-chart.js), the zone's open alarms to acknowledge, the day in figures
// and the day's readings as CSV.
// A command token sees it beside the gates; a depot token sees only this view, and only the
// depots it names, whose alarms it acknowledges too.
"use strict";
(() => {
  const gp = window.gatepost;
  const { $, $$, T, say, both, number, agePair, partsIn, whenIn } = gp;
  const { setContent, element, message, api, failureWords } = gp;
  const REFRESH_MS = 15000;

  let overview = null;  // the DepotsOverview on screen
  let chosen = null;  // { site, node, zone } whose day is open
  let loads = 0;  // a newer load of the day makes an older answer stale
  let timer = 0;

  // A word the catalogue may not have (a class a site added, a state or kind added later):
  // the slug as it came, in both languages.
  const term = (key, slug) => (Array.isArray(T[key]) ? say(key) : both([slug, slug]));
  const tenths = (value) => (value === null || value === undefined ? "—" : value.toFixed(1));

  // --- the overview ----------------------------------------------------------------------

  function classWords(zone) {
    if (!zone.storage_class) return say("depot.noClass");
    const fragment = term(`storageClass.${zone.storage_class}`, zone.storage_class);
    for (const band of zone.bands) fragment.append(" · ", both(gp.depotChart.bandPair(band)));
    return fragment;
  }

  // The temperature large, the humidity beside it smaller; a fault in words.
  function readingWords(reading) {
    if (reading.status !== "ok") return term(`reading.${reading.status}`, reading.status);
    const fragment = document.createDocumentFragment();
    fragment.append(`${tenths(reading.temperature_c)} °C`);
    if (reading.humidity_pct !== null) {
      fragment.append(element("small", {}, ` · ${tenths(reading.humidity_pct)} %RH`));
    }
    return fragment;
  }

  // Drawn again only when something shown changed (or a minute passed, for the ages): a
  // tile keeps its focus and a reader's place. The focused tile is focused again after.
  let drawn = "";
  function renderOverview() {
    const depots = overview.depots;
    const key = JSON.stringify([depots, overview.may_acknowledge, chosen, Math.floor(Date.parse(overview.at) / 60000)]);
    if (key === drawn) return;
    drawn = key;
    const focused = document.activeElement && document.activeElement.closest("#depot-list [data-testid]");
    const list = setContent($("#depot-list"));
    for (const depot of depots) list.append(depotCard(depot));
    if (focused) {
      const again = list.querySelector(`[data-testid="${CSS.escape(focused.dataset.testid)}"]`);
      if (again) again.focus();
    }
    // None to show: the config names none, or (a depot token) the token names none.
    const none = $("#no-depots");
    none.dataset.word = overview.sees_all ? "depot.none" : "depot.noneOfToken";
    setContent(none, say(none.dataset.word));
    none.hidden = depots.length > 0;
    if (chosen) {
      const found = current();
      if (found) renderZoneHead(found.depot, found.zone);
      else closeZone();
    }
  }

  function depotCard(depot) {
    const seen = depot.last_seen
      ? say("gate.lastSeen", { age: agePair((Date.parse(overview.at) - Date.parse(depot.last_seen)) / 1000) })
      : say("gate.neverSeen");
    const card = element("section", {
      className: "depot", dataset: { testid: `depot-${depot.site}-${depot.node}`, online: String(depot.online) },
    }, element("header", {},
      element("h3", {}, depot.node),
      element("span", { className: "depot-site" }, depot.site),
      element("span", { className: "presence" }, say(depot.online ? "gate.online" : "gate.offline")),
      element("span", { className: "seen" }, seen)));
    if (depot.alarms.length) {
      const own = element("ol", { className: "depot-alarms" });
      for (const alarm of depot.alarms) own.append(alarmItem(depot, alarm));
      card.append(own);
    }
    const zones = element("div", { className: "zones" });
    for (const zone of depot.zones) zones.append(zoneTile(depot, zone));
    if (!depot.zones.length) zones.append(element("p", { className: "empty" }, say("depot.noZones")));
    card.append(zones);
    return card;
  }

  // A zone at a glance: its value, its state in words and by colour, its class and band.
  function zoneTile(depot, zone) {
    const open = chosen && chosen.site === depot.site && chosen.node === depot.node && chosen.zone === zone.zone;
    const latest = zone.latest;
    const tile = element("button", {
      type: "button", className: "zone", title: zone.description,
      dataset: { testid: `zone-${depot.site}-${depot.node}-${zone.zone}`, state: zone.state },
      "aria-pressed": String(Boolean(open)),
    },
      element("span", { className: "zone-name" }, zone.zone),
      element("span", { className: "value", dataset: { testid: "zone-value" } }, latest ? readingWords(latest) : "—"),
      element("span", { className: "state", dataset: { testid: "zone-state" } }, term(`zoneState.${zone.state}`, zone.state)),
      element("span", { className: "band" }, classWords(zone)),
      element("span", { className: "read-at" },
        latest ? say("depot.readAt", { time: whenIn(depot.timezone, latest.at) }) : say("depot.neverRead")));
    tile.addEventListener("click", () => chooseZone(depot, zone));
    return tile;
  }

  async function refresh() {
    if (!gp.token()) return;
    try {
      overview = await (await api("/api/depots")).json();
      gp.depotZones = overview.depots;
      renderOverview();
    } catch (failure) {
      if (!gp.tokenProblem(failure)) message("bad", failureWords(failure));
    }
  }

  // --- one zone's day ----------------------------------------------------------------------

  function current() {
    if (!chosen || !overview) return null;
    const depot = overview.depots.find((d) => d.site === chosen.site && d.node === chosen.node);
    const zone = depot && depot.zones.find((z) => z.zone === chosen.zone);
    return zone ? { depot, zone } : null;
  }

  const today = (zone) => {
    const p = partsIn(zone);
    return `${p.y}-${p.mm}-${p.dd}`;
  };

  function chooseZone(depot, zone) {
    chosen = { site: depot.site, node: depot.node, zone: zone.zone };
    $("#zone-day").value = today(depot.timezone);
    renderOverview();
    $("#zone-detail").hidden = false;
    loadDay();
    $("#zone-detail").scrollIntoView({ block: "nearest" });
  }

  function closeZone() {
    chosen = null;
    gp.depotChart.destroy();
    $("#zone-detail").hidden = true;
    if (overview) for (const tile of $$(".zone[aria-pressed]")) tile.setAttribute("aria-pressed", "false");
  }

  // What the overview says of the zone now: its name, class and band, its open alarms.
  function renderZoneHead(depot, zone) {
    setContent($("#zone-title"), `${depot.node} · ${zone.zone}`);
    setContent($("#zone-class"), classWords(zone));
    const list = setContent($("#zone-alarms"));
    for (const alarm of zone.alarms) list.append(alarmItem(depot, alarm));
    $("#zone-no-alarms").hidden = zone.alarms.length > 0;
  }

  function dayUrl(depot, what, params) {
    return `/api/depots/${encodeURIComponent(depot.site)}/${encodeURIComponent(depot.node)}/${what}?${new URLSearchParams(params)}`;
  }

  async function loadDay() {
    const found = current();
    if (!found) return;
    const { depot, zone } = found;
    const day = $("#zone-day").value || today(depot.timezone);
    const load = ++loads;
    try {
      const [readings, summaries] = await Promise.all([
        api(dayUrl(depot, "readings", { day, zone: zone.zone })).then((r) => r.json()),
        api(dayUrl(depot, "summary", { day })).then((r) => r.json()),
      ]);
      if (load !== loads) return;
      gp.depotChart.draw($("#zone-chart"), $("#zone-legend"), depot, zone, readings);
      $("#zone-no-readings").hidden = !$("#zone-chart").hidden;
      renderSummary(summaries.find((s) => s.zone === zone.zone));
    } catch (failure) {
      if (!gp.tokenProblem(failure)) message("bad", failureWords(failure));
    }
  }

  function renderSummary(summary) {
    const body = setContent($("#zone-summary"));
    if (!summary) return;
    const c = (value) => `${tenths(value)} °C`;
    const rows = [
      ["summary.min", c(summary.temperature_min_c)],
      ["summary.max", c(summary.temperature_max_c)],
      ["summary.mean", c(summary.temperature_mean_c)],
      ["summary.mkt", c(summary.mean_kinetic_c)],
      ["summary.humidityMax", `${tenths(summary.humidity_max_pct)} %RH`],
      ["summary.out", say("summary.minutes", { n: number(summary.minutes_out_of_range) })],
      ["summary.readings", number(summary.readings)],
      ["summary.faults", number(summary.faults)],
    ];
    for (const [key, value] of rows) {
      const row = element("tr", { dataset: { testid: key.replace(".", "-") } },
        element("th", {}, say(key)), element("td", {}, value));
      if (key === "summary.out" && summary.minutes_out_of_range > 0) row.className = "out";
      body.append(row);
    }
  }

  // Downloads go through fetch, so the token stays in a header and out of any URL.
  async function downloadCsv() {
    const found = current();
    if (!found) return;
    const { depot, zone } = found;
    const day = $("#zone-day").value || today(depot.timezone);
    try {
      const blob = await (await api(dayUrl(depot, "readings", { day, zone: zone.zone, format: "csv" }))).blob();
      const url = URL.createObjectURL(blob);
      const link = element("a", { href: url, download: `gatepost-${depot.site}-${depot.node}-${zone.zone}-${day}.csv` });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (failure) {
      if (!gp.tokenProblem(failure)) message("bad", failureWords(failure));
    }
  }

  // --- alarms --------------------------------------------------------------------------------

  function alarmItem(depot, alarm) {
    return gp.alarmItem(alarm, {
      testid: "depot-alarm", zone: depot.timezone,
      acknowledge: overview.may_acknowledge, acknowledged: refresh,
    });
  }

  // --- the view --------------------------------------------------------------------------------

  function show(view) {
    document.body.dataset.view = view;
    for (const link of $$(".views a")) {
      if (link.dataset.view === view) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    clearInterval(timer);
    if (view !== "depots") return;
    refresh();
    // Today's chart follows the readings coming in; another day's stays as it is.
    timer = setInterval(() => {
      refresh();
      const found = current();
      if (found && $("#zone-day").value === today(found.depot.timezone)) loadDay();
    }, REFRESH_MS);
  }

  // A token that may not see the gates but may see the depots: this view alone.
  async function depotsOnly() {
    try {
      overview = await (await api("/api/depots")).json();
    } catch (failure) {
      return false;
    }
    gp.depotZones = overview.depots;
    document.body.dataset.only = "depots";
    renderOverview();
    show(window.location.hash === "#stock" ? "stock" : "depots");  // stock.js: its stock
    return true;
  }

  for (const link of $$(".views a")) {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      history.replaceState(null, "", `#${link.dataset.view}`);
      show(link.dataset.view);
    });
  }
  $("#zone-form").addEventListener("submit", (event) => {
    event.preventDefault();
    loadDay();
  });
  $("#zone-csv").addEventListener("click", downloadCsv);
  $("#zone-close").addEventListener("click", closeZone);
  window.addEventListener("resize", () => gp.depotChart.fit($("#zone-chart")));

  // The board's live frames carry every live alarm: when those of the depots change (one
  // raised, acknowledged, cleared), the view asks again at once instead of at its next turn.
  let depotAlarms = "";
  function onSnapshot(snapshot) {
    const depots = new Set(overview ? overview.depots.map((d) => `${d.site}/${d.node}`) : []);
    const now = snapshot.alarms.filter((a) => depots.has(`${a.site}/${a.node}`))
      .map((a) => `${a.alarm_id}:${a.state}:${a.escalated_at || ""}`).join();
    if (now === depotAlarms) return;
    depotAlarms = now;
    if (document.body.dataset.view === "depots") refresh();
  }

  Object.assign(gp, { depotsOnly, showView: show, onSnapshot });
  show(["#depots", "#stock"].includes(window.location.hash) ? window.location.hash.slice(1) : "gates");
})();
