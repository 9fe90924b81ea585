// The depots view: every depot and zone at a glance (GET /api/depots), and a zone's day:
// its chart (uPlot, vendor/) with the class band drawn and excursions shaded, the zone's
// open alarms to acknowledge, the day in figures and the day's readings as CSV.
// A command token sees it beside the gates; a depot token sees only this view.
"use strict";
(() => {
  const gp = window.gatepost;
  const { $, $$, T, say, both, pairOf, number, agePair, partsIn, clockIn, whenIn } = gp;
  const { setContent, element, message, api, failureWords } = gp;
  const REFRESH_MS = 15000;
  const CHART_HEIGHT = 320;

  let overview = null;  // the DepotsOverview on screen
  let chosen = null;  // { site, node, zone } whose day is open
  let chart = null;  // its uPlot
  let loads = 0;  // a newer load of the day makes an older answer stale
  let timer = 0;

  // A word the catalogue may not have (a class a site added, a state or kind added later):
  // the slug as it came, in both languages.
  const term = (key, slug) => (Array.isArray(T[key]) ? say(key) : both([slug, slug]));
  const termPair = (key, slug) => (Array.isArray(T[key]) ? pairOf(key) : [slug, slug]);
  const hhmm = (zone, seconds) => clockIn(zone, new Date(seconds * 1000)).slice(0, 5);
  const tenths = (value) => (value === null || value === undefined ? "—" : value.toFixed(1));

  // The chart's colours are the style sheet's (--chart-*): one place for the page and canvas.
  function colour(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(`--chart-${name}`).trim();
  }

  // --- the overview ----------------------------------------------------------------------

  function bandPair(band) {
    const values = { low: tenths(band.low), high: tenths(band.high), unit: band.unit };
    if (band.low !== null && band.high !== null) return pairOf("depot.bandBetween", values);
    if (band.high !== null) return pairOf("depot.bandBelow", values);
    return pairOf("depot.bandAbove", values);
  }

  function classWords(zone) {
    if (!zone.storage_class) return say("depot.noClass");
    const fragment = term(`storageClass.${zone.storage_class}`, zone.storage_class);
    for (const band of zone.bands) fragment.append(" · ", both(bandPair(band)));
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
    $("#no-depots").hidden = depots.length > 0;
    $("#depots-read-only").hidden = overview.may_acknowledge;
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
    if (chart) chart.destroy();
    chart = null;
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
      drawChart(depot, zone, readings);
      renderSummary(summaries.find((s) => s.zone === zone.zone));
    } catch (failure) {
      if (!gp.tokenProblem(failure)) message("bad", failureWords(failure));
    }
  }

  // The quantity charted: the one the zone's class watches first (temperature if any).
  function chartedOf(zone) {
    const band = zone.bands[0] || null;
    const quantity = band ? band.quantity : "temperature";
    return {
      band, quantity,
      field: quantity === "humidity" ? "humidity_pct" : "temperature_c",
      unit: band ? band.unit : "°C",
    };
  }

  // Inside the band is strictly between its thresholds: a reading at one is an excursion.
  const outside = (band, value) => band !== null && value !== null
    && ((band.high !== null && value >= band.high) || (band.low !== null && value <= band.low));

  // Each excursion: from its first reading outside to the next reading back inside (or its
  // last reading); readings without a value (faults) neither start nor end one.
  function excursions(xs, ys, band) {
    const spans = [];
    let start = null;
    for (let i = 0; i < xs.length; i++) {
      if (ys[i] === null) continue;
      const out = outside(band, ys[i]);
      if (out && start === null) start = i;
      if (!out && start !== null) { spans.push([xs[start], xs[i]]); start = null; }
    }
    if (start !== null) spans.push([xs[start], xs[xs.length - 1]]);
    return spans;
  }

  function drawChart(depot, zone, readings) {
    const { band, quantity, field, unit } = chartedOf(zone);
    const xs = readings.map((r) => Date.parse(r.at) / 1000);
    const ys = readings.map((r) => r[field]);
    const spans = excursions(xs, ys, band);
    if (chart) chart.destroy();
    chart = null;
    const box = setContent($("#zone-chart"));
    const values = ys.filter((y) => y !== null);
    box.hidden = values.length === 0;
    $("#zone-no-readings").hidden = values.length > 0;
    renderLegend(depot, { band, quantity, unit, xs, ys, values, spans });
    if (!values.length) return;
    const paint = { line: colour("line"), band: colour("band"), edge: colour("band-edge"), out: colour("excursion") };
    chart = new uPlot({
      width: Math.max(320, box.clientWidth),
      height: CHART_HEIGHT,
      // The site's time on the axis, whatever the browser's zone.
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), depot.timezone),
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (u, min, max) => yRange(min, max, band) } },
      axes: [
        // HH:MM in the site's zone, the same in both languages.
        { stroke: "#111", grid: { stroke: "#ddd" }, ticks: { stroke: "#999" },
          values: (u, splits) => splits.map((ts) => hhmm(depot.timezone, ts)) },
        { stroke: "#111", grid: { stroke: "#ddd" }, ticks: { stroke: "#999" }, size: 56,
          values: (u, splits) => splits.map((v) => v.toFixed(1)) },
      ],
      series: [{}, { stroke: paint.line, width: 2, points: { show: false }, spanGaps: false }],
      hooks: {
        // Under the line: the band, then the excursions over it.
        drawAxes: [(u) => drawBand(u, band, spans, paint)],
        setCursor: [(u) => showCursor(u, depot, unit)],
      },
    }, [xs, ys], box);
    box.dataset.points = String(values.length);
  }

  function yRange(min, max, band) {
    let low = min;
    let high = max;
    if (band && band.low !== null) low = low === null ? band.low : Math.min(low, band.low);
    if (band && band.high !== null) high = high === null ? band.high : Math.max(high, band.high);
    if (low === null || high === null) return [0, 10];
    const pad = Math.max((high - low) * 0.1, 0.5);
    return [low - pad, high + pad];
  }

  function drawBand(u, band, spans, paint) {
    const { ctx, bbox } = u;  // in canvas pixels
    ctx.save();
    ctx.beginPath();
    ctx.rect(bbox.left, bbox.top, bbox.width, bbox.height);
    ctx.clip();
    if (band) {
      const top = band.high === null ? bbox.top : u.valToPos(band.high, "y", true);
      const bottom = band.low === null ? bbox.top + bbox.height : u.valToPos(band.low, "y", true);
      ctx.fillStyle = paint.band;
      ctx.fillRect(bbox.left, top, bbox.width, bottom - top);
      ctx.strokeStyle = paint.edge;
      ctx.lineWidth = Math.max(1, window.devicePixelRatio || 1);
      ctx.setLineDash([8, 6]);
      for (const edge of [band.high, band.low]) {
        if (edge === null) continue;
        const y = Math.round(u.valToPos(edge, "y", true)) + 0.5;
        ctx.beginPath();
        ctx.moveTo(bbox.left, y);
        ctx.lineTo(bbox.left + bbox.width, y);
        ctx.stroke();
      }
    }
    ctx.fillStyle = paint.out;
    for (const [from, to] of spans) {
      const x0 = u.valToPos(from, "x", true);
      const x1 = u.valToPos(to, "x", true);
      ctx.fillRect(x0, bbox.top, Math.max(x1 - x0, 3), bbox.height);
    }
    ctx.restore();
  }

  function renderLegend(depot, { band, quantity, unit, xs, ys, values, spans }) {
    const swatch = (name) => element("span", { className: `swatch ${name}` });
    const legend = setContent($("#zone-legend"),
      element("li", { dataset: { testid: "legend-line" } }, swatch("line"),
        say("depot.legendLine", { quantity: termPair(`quantity.${quantity}`, quantity), unit, n: number(values.length) })));
    if (band) {
      legend.append(element("li", { dataset: { testid: "legend-band" } }, swatch("band"),
        say("depot.legendBand", { band: bandPair(band) })));
    }
    legend.append(element("li", { dataset: { testid: "legend-excursions" } }, swatch("excursion"),
      say("depot.legendExcursions", { n: spans.length })));
    if (values.length) {
      const last = ys.map((y, i) => [y, i]).filter(([y]) => y !== null).pop();
      legend.append(
        element("li", { dataset: { testid: "legend-range" } },
          say("depot.legendRange", { low: tenths(Math.min(...values)), high: tenths(Math.max(...values)), unit })),
        element("li", { dataset: { testid: "legend-latest" } },
          say("depot.legendLatest", { time: hhmm(depot.timezone, xs[last[1]]), value: `${tenths(last[0])} ${unit}` })),
        element("li", { className: "cursor", dataset: { testid: "legend-cursor" } }));
    }
  }

  // The reading under the pointer, beside the legend.
  function showCursor(u, depot, unit) {
    const box = $('[data-testid="legend-cursor"]');
    if (!box) return;
    const i = u.cursor.idx;
    if (i === null || i === undefined || u.data[1][i] === null) { setContent(box); return; }
    setContent(box, say("depot.legendAt", {
      time: hhmm(depot.timezone, u.data[0][i]), value: `${tenths(u.data[1][i])} ${unit}`,
    }));
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
    show("depots");
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
  window.addEventListener("resize", () => {
    if (chart) chart.setSize({ width: Math.max(320, $("#zone-chart").clientWidth), height: CHART_HEIGHT });
  });

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
  if (window.location.hash === "#depots") show("depots");
})();
