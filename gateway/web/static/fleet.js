// The fleet view (admin only): every node's problems, software, config, trust list age, devices, last
// seen, clock skew and outbox from GET /api/nodes/fleet, those with problems first and marked.
// The view's link shows only once the gateway answered the fleet to this token.
"use strict";
(() => {
  const gp = window.gatepost;
  const { $, T, say, both, pairOf, agePair, number, setContent, element, message, api, failureWords } = gp;
  const REFRESH_MS = 10000;
  const CONFIG_SHOWN = 12;  // characters of the config hash; the whole one on hover
  const OFFLINE_REASONS = ["lost", "shutdown", "heartbeat", "never-seen"];

  let timer = 0;
  let loads = 0;  // a newer load makes an older answer stale

  const link = () => $("#view-fleet");
  const isShown = () => document.body.dataset.view === "fleet";
  const term = (key, slug) => (Array.isArray(T[key]) ? pairOf(key) : [slug, slug]);
  const dash = () => both(["—", "—"]);

  // --- one node --------------------------------------------------------------------------

  function cell(content, { bad = false, className = "", title = "", testid = "" } = {}) {
    const dataset = { bad: String(bad) };
    if (testid) dataset.testid = testid;
    return element("td", { className, title, dataset }, content);
  }

  function state(node) {
    if (node.online) return say("gate.online");
    return OFFLINE_REASONS.includes(node.offline_reason) ? say(`fleetOffline.${node.offline_reason}`) : say("gate.offline");
  }

  function trust(node) {
    if (node.trust_list_age_s !== null) return both(agePair(node.trust_list_age_s));
    return node.role === "gate" && node.last_seen ? say("fleet.noList") : dash();
  }

  function lastSeen(node) {
    if (!node.last_seen) return say("gate.neverSeen");
    return say("gate.lastSeen", { age: agePair((Date.now() - new Date(node.last_seen).getTime()) / 1000) });
  }

  function skew(node) {
    if (node.clock_skew_s === null) return dash();
    const text = `${node.clock_skew_s >= 0 ? "+" : "−"}${Math.abs(node.clock_skew_s).toFixed(1)} s`;
    return both([text, text]);
  }

  // Each device in words with its state, then the open faults the node raised.
  function devices(node) {
    const box = element("span", { className: "devices" });
    const entries = Object.entries(node.devices).sort(([a], [b]) => a.localeCompare(b));
    entries.forEach(([device, status], i) => {
      const state = term(`deviceState.${status}`, status);
      box.append(i ? " · " : "", both(term(`device.${device}`, device).map((name, j) => `${name} ${state[j]}`)));
    });
    for (const fault of node.faults) {
      const [device, name] = fault.split("/");
      box.append(box.childNodes.length ? " · " : "",
        say("gate.fault", { device: term(`device.${device}`, device), fault: term(`fault.${name}`, name) }));
    }
    return box.childNodes.length ? box : dash();
  }

  function problems(node) {
    if (!node.problems.length) return say("fleet.well");
    const box = element("span", {});
    node.problems.forEach((problem, i) => box.append(i ? " · " : "⚠ ", say(`fleetProblem.${problem}`)));
    return box;
  }

  function row(node) {
    const has = (problem) => node.problems.includes(problem);
    const name = element("span", {}, node.node);
    if (!node.expected) name.append(" · ", say("fleet.notListed"));
    // serial/hash, as `gatepost fw fleet` prints it: the signed config's serial and its hash.
    const config = `${node.config_serial ?? "—"}/${node.config_hash ? node.config_hash.slice(0, CONFIG_SHOWN) : "—"}`;
    return element("tr", {
      dataset: { testid: `fleet-${node.site}-${node.node}`, problem: String(node.problems.length > 0), problems: node.problems.join(" ") },
    },
      cell(node.site),
      cell(name),
      cell(say(`fleetRole.${node.role}`)),
      cell(state(node), { bad: has("offline"), testid: "fleet-state" }),
      cell(problems(node), { bad: node.problems.length > 0, testid: "fleet-problems" }),
      cell(node.version || "—"),
      cell(config, { className: "config", title: node.config_hash || "", testid: "fleet-config" }),
      cell(trust(node), { bad: has("trust-stale"), className: "num", testid: "fleet-trust" }),
      cell(lastSeen(node), { bad: has("offline") }),
      cell(skew(node), { bad: has("clock-skew"), className: "num", testid: "fleet-skew" }),
      cell(number(node.outbox_depth), { className: "num" }),
      cell(devices(node), { bad: has("device-fault"), testid: "fleet-devices" }));
  }

  // --- the view --------------------------------------------------------------------------

  function render(nodes) {
    setContent($("#fleet-rows"), ...nodes.map(row));
    $("#fleet-none").hidden = nodes.length > 0;
    const unwell = nodes.filter((node) => node.problems.length > 0).length;
    const summary = setContent($("#fleet-summary"), say("fleet.summary", { nodes: nodes.length, problems: unwell }));
    summary.dataset.problems = String(unwell > 0);
  }

  // The fleet for this token: the link appears when the gateway answers it, and goes (with
  // the view) when it refuses; `quiet` on a probe, which says nothing of a refusal.
  async function load({ quiet = false } = {}) {
    const turn = ++loads;
    if (!gp.token()) { link().hidden = true; return; }
    let nodes;
    try {
      nodes = await (await api("/api/nodes/fleet")).json();
    } catch (failure) {
      if (turn !== loads) return;
      if (failure.status === 401 || failure.status === 403) {
        link().hidden = true;
        if (isShown()) gp.showView("gates");
      } else if (!quiet) {
        message("bad", failureWords(failure));
      }
      return;
    }
    if (turn !== loads) return;
    link().hidden = false;
    render(nodes);
    if (window.location.hash === "#fleet" && !isShown()) gp.showView("fleet");
  }

  // Shown whenever body[data-view] says so, whoever set it (the link, the address).
  function follow() {
    clearInterval(timer);
    if (!isShown()) return;
    load();
    timer = setInterval(load, REFRESH_MS);
  }
  new MutationObserver(follow).observe(document.body, { attributes: true, attributeFilter: ["data-view"] });

  // A token typed into the form (dashboard.js connects with it first) is asked about again.
  $("#token-form").addEventListener("submit", () => setTimeout(() => load({ quiet: true }), 0));
  load({ quiet: true });
})();
