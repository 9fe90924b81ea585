// A zone's day as a chart (uPlot, vendor/): the readings of the quantity its class
// watches first, the class band drawn under them, each excursion shaded over it, and a
// legend in both languages with the value under the pointer. For depots.js (loaded next).
"use strict";
(() => {
  const gp = window.gatepost;
  const { $, T, say, pairOf, number, clockIn, setContent, element } = gp;
  const HEIGHT = 320;
  let chart = null;  // the uPlot on screen

  const termPair = (key, slug) => (Array.isArray(T[key]) ? pairOf(key) : [slug, slug]);
  const hhmm = (zone, seconds) => clockIn(zone, new Date(seconds * 1000)).slice(0, 5);
  const tenths = (value) => (value === null || value === undefined ? "—" : value.toFixed(1));

  // The colours are the style sheet's (--chart-*): one place for the legend and the canvas.
  function colour(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(`--chart-${name}`).trim();
  }

  // A band in words: [zh, en].
  function bandPair(band) {
    const values = { low: tenths(band.low), high: tenths(band.high), unit: band.unit };
    if (band.low !== null && band.high !== null) return pairOf("depot.bandBetween", values);
    if (band.high !== null) return pairOf("depot.bandBelow", values);
    return pairOf("depot.bandAbove", values);
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

  // The zone's readings (of one day, by time) into `box`, its legend into `legendBox`; a
  // day without a value hides `box`.
  function draw(box, legendBox, depot, zone, readings) {
    const { band, quantity, field, unit } = chartedOf(zone);
    const xs = readings.map((r) => Date.parse(r.at) / 1000);
    const ys = readings.map((r) => r[field]);
    const spans = excursions(xs, ys, band);
    destroy();
    setContent(box);
    const values = ys.filter((y) => y !== null);
    box.hidden = values.length === 0;
    renderLegend(legendBox, depot, { band, quantity, unit, xs, ys, values, spans });
    if (!values.length) return;
    const paint = { line: colour("line"), band: colour("band"), edge: colour("band-edge"), out: colour("excursion") };
    chart = new uPlot({
      width: Math.max(320, box.clientWidth),
      height: HEIGHT,
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
        setCursor: [(u) => showCursor(u, legendBox, depot, unit)],
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

  function renderLegend(legend, depot, { band, quantity, unit, xs, ys, values, spans }) {
    const swatch = (name) => element("span", { className: `swatch ${name}` });
    setContent(legend,
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
  function showCursor(u, legend, depot, unit) {
    const box = $(".cursor", legend);
    if (!box) return;
    const i = u.cursor.idx;
    if (i === null || i === undefined || u.data[1][i] === null) { setContent(box); return; }
    setContent(box, say("depot.legendAt", {
      time: hhmm(depot.timezone, u.data[0][i]), value: `${tenths(u.data[1][i])} ${unit}`,
    }));
  }

  function destroy() {
    if (chart) chart.destroy();
    chart = null;
  }

  function fit(box) {
    if (chart) chart.setSize({ width: Math.max(320, box.clientWidth), height: HEIGHT });
  }

  Object.assign(gp, { depotChart: { draw, destroy, fit, bandPair } });
})();
