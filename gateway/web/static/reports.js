// The daily report view: a site and a day, the gates' lines, CSV and a printable page.
"use strict";
(() => {
  const gp = window.gatepost;
  const { $, say, number, dateTime, siteTime, setContent, element, message, api, failureWords } = gp;
  let shown = null;  // the SiteDailyReport on screen

  // The site list follows the snapshots; the choice made survives them.
  function reportSites(names) {
    const select = $("#report-site");
    const have = Array.from(select.options).map((option) => option.value);
    if (have.join() === names.join()) return;
    const chosen = select.value;
    setContent(select, ...names.map((name) => element("option", { value: name }, name)));
    if (names.includes(chosen)) select.value = chosen;
  }

  function query(format, site, day) {
    const params = new URLSearchParams({ site, format });
    if (day) params.set("day", day);
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
    $("#report-day").value = report.day;
    setContent($("#report-summary"), say("reportSummary", {
      site: report.site, day: report.day, start: siteTime(report.period_start),
      end: siteTime(report.period_end), expected: report.expected_gates, missing: report.missing,
      zero: report.zero_reports, mismatches: report.mismatches,
    }), report.closed ? "" : say("notClosed"));
    const rows = setContent($("#report-rows"));
    for (const gate of report.gates) rows.append(row(gate));
    const totals = row({
      node: "total", status: "", received_at: null, reported: report.reported_totals,
      computed: report.computed_totals, mismatch: false, expected: true,
    }, say("siteTotals"));
    totals.classList.add("total");
    rows.append(totals);
    $("#report-table").hidden = false;
    $("#report-csv").disabled = false;
    $("#report-print").disabled = false;
  }

  const COLUMNS = ["person_checks", "vehicle_checks", "temperature_readings", "turned_back", "fever", "disinfections"];

  function row(gate, label = gate.node) {
    const status = element("td", { className: "status" });
    if (gate.status) status.append(say(gate.status));
    if (gate.mismatch) status.append(element("div", { className: "differs" }, say("differs")));
    if (!gate.expected) status.append(element("div", {}, say("notListed")));
    const tr = element("tr", { dataset: { testid: `report-gate-${gate.node}`, status: gate.status } },
      element("th", {}, label), status,
      element("td", {}, gate.received_at ? dateTime(gate.received_at) : "—"));
    for (const name of COLUMNS) {
      const value = gate.reported ? gate.reported[name] : null;
      const computed = gate.computed[name];
      const cell = element("td", {}, number(value));
      // Beside the gate's number, the gateway's when they differ; for a gate that sent
      // nothing, the gateway's only when it counted something.
      if (value === null ? computed > 0 : value !== computed) {
        cell.append(element("small", {}, say("gatewayCount", { n: number(computed) })));
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
      const blob = await (await api(query(format, shown.site, shown.day))).blob();
      const url = URL.createObjectURL(blob);
      if (format === "csv") {
        const link = element("a", { href: url, download: `gatepost-${shown.site}-${shown.day}.csv` });
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
