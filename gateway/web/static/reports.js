// The daily report view: a site and a day, the gates' lines, CSV and a printable page.
// It opens on the day not closed yet, so far; a closed day is chosen by its date.
"use strict";
(() => {
  const gp = window.gatepost;
  const { $, say, both, number, whenIn, clockIn, setContent, element, message, api, failureWords } = gp;
  let shown = null;  // the SiteDailyReport on screen

  // The site list follows the snapshots; the choice made survives them. The first list
  // brings up today's report so far.
  function reportSites(names) {
    const select = $("#report-site");
    const have = Array.from(select.options).map((option) => option.value);
    if (have.join() === names.join()) return;
    const chosen = select.value;
    setContent(select, ...names.map((name) => element("option", { value: name }, name)));
    if (names.includes(chosen)) select.value = chosen;
    if (!have.length && names.length) load();
  }

  // No date: the period not closed yet.
  function query(format, site, reportDate) {
    const params = new URLSearchParams({ site, format });
    if (reportDate) params.set("report_date", reportDate);
    return `/api/reports/daily?${params}`;
  }

  async function load() {
    try {
      const report = await (await api(query("json", $("#report-site").value, $("#report-day").value))).json();
      render(report);
    } catch (failure) {
      if (!gp.tokenProblem(failure)) message("bad", failureWords(failure));
    }
  }

  function render(report) {
    shown = report;
    $("#report-day").value = report.report_date;
    const summary = setContent($("#report-summary"),
      element("h3", { dataset: { testid: "report-title" } }, both(report.wording.title)),
      element("p", { className: "period", dataset: { testid: "report-period" } },
        both(report.wording.period)));
    summary.dataset.closed = String(report.closed);
    summary.append(report.closed
      ? element("p", { className: "closed" }, say("report.closed"))
      : element("p", { className: "open", dataset: { testid: "report-open" } },
        say("report.soFar", { time: clockIn(report.timezone, report.generated_at).slice(0, 5) })));
    summary.append(element("p", {}, say("report.summary", {
      expected: report.expected_gates, missing: report.missing, zero: report.zero_reports,
      mismatches: report.mismatches,
    })));
    const rows = setContent($("#report-rows"));
    for (const gate of report.gates) rows.append(row(gate, report));
    const totals = row({
      node: "total", status: report.closed ? "" : "open", received_at: null,
      reported: report.closed ? report.reported_totals : null,
      computed: report.computed_totals, mismatch: false, expected: true,
    }, report, say("report.total"));
    totals.classList.add("total");
    rows.append(totals);
    $("#report-table").hidden = false;
    $("#report-csv").disabled = false;
    $("#report-print").disabled = false;
  }

  const COLUMNS = ["person_checks", "vehicle_checks", "temperature_readings", "turned_back", "fever", "disinfections"];

  function row(gate, report, label = gate.node) {
    const status = element("td", { className: "status" });
    if (gate.status && gate.node !== "total") status.append(say(`report.${gate.status}`));
    if (gate.mismatch) status.append(element("div", { className: "differs" }, say("report.differs")));
    if (!gate.expected) status.append(element("div", {}, say("gate.notListed")));
    const tr = element("tr", { dataset: { testid: `report-gate-${gate.node}`, status: gate.status } },
      element("th", {}, label), status,
      element("td", {}, gate.received_at ? both(whenIn(report.timezone, gate.received_at)) : "—"));
    for (const name of COLUMNS) {
      const value = gate.reported ? gate.reported[name] : null;
      const computed = gate.computed[name];
      if (gate.status === "open" && value === null) {
        // Not closed yet: the gate reports at the cut-off; this is the count so far.
        tr.append(element("td", {}, number(computed)));
        continue;
      }
      const cell = element("td", {}, number(value));
      // Beside the gate's number, the system's when they differ; for a gate that sent
      // nothing, the system's only when it counted something.
      if (value === null ? computed > 0 : value !== computed) {
        cell.append(element("small", {}, say("report.counted", { n: number(computed) })));
        if (value !== null) cell.className = "differs";
      }
      tr.append(cell);
    }
    return tr;
  }

  // Downloads go through fetch, so the token stays in a header and out of any URL.
  async function download(format) {
    if (!shown) return;
    try {
      const blob = await (await api(query(format, shown.site, shown.report_date))).blob();
      const url = URL.createObjectURL(blob);
      if (format === "csv") {
        const link = element("a", { href: url, download: `gatepost-${shown.site}-${shown.report_date}.csv` });
        document.body.append(link);
        link.click();
        link.remove();
      } else {
        window.open(url, "_blank");
      }
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (failure) {
      if (!gp.tokenProblem(failure)) message("bad", failureWords(failure));
    }
  }

  $("#report-form").addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  $("#report-csv").addEventListener("click", () => download("csv"));
  $("#report-print").addEventListener("click", () => download("html"));

  Object.assign(gp, { reportSites });
})();
