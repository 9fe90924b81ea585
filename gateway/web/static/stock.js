// The stock view: a depot's on hand by lot, its days of cover against the site's reserve
// targets, expiring lots, transfers in transit and its latest ledger entries, the site's
// supply alert level and its daily stock report; and the forms a depot keeper (or admin)
// enters movements with. The command center sees the same, read only.
// Every movement carries an Idempotency-Key made when its form is opened or cleared, so a
// double tap, or a retry after an answer lost on the way, sends the same key: the ledger
// writes it once and answers the first entry again.
"use strict";
(() => {
  const gp = window.gatepost;
  const { $, $$, T, say, both, pairOf, partsIn, whenIn, setContent, element, message, api, failureWords } = gp;
  const ENTRIES_SHOWN = 20;
  const REFRESH_MS = 30000;
  const FEFO_WAIT_MS = 300;
  const PATHS = { receipt: "receipts", issue: "issues", "transfer-out": "transfers", adjustment: "adjustments" };
  const SOURCES = ["purchase", "allocation", "donation"];

  let places = [];  // [{ site, node, timezone }] the token sees (GET /api/depots)
  let mayEnter = false;  // a depot or admin token: the forms are shown
  let items = new Map();  // catalogue key -> item of the chosen site (GET /api/stock/items)
  let itemsOf = "";  // the site `items` is of
  let onHand = [];  // the chosen depot's positions, for the lot list
  let loads = 0;  // a newer load makes an older answer stale
  let timer = 0;
  let kind = "receipt";
  let entryKey = "";  // the movement form's Idempotency-Key
  let reversing = null;  // { id, key }: the entry the reversal form is open for
  const receiveKeys = new Map();  // transfer-out id -> the key of its receipt here
  let sending = false;
  let fefoTimer = 0;

  const enc = encodeURIComponent;
  const lang = () => (document.documentElement.dataset.lang === "en" ? 1 : 0);
  const pairOr = (key, slug) => (Array.isArray(T[key]) ? T[key] : [slug, slug]);
  const unitPair = (unit) => pairOr(`unit.${unit}`, unit);
  const categoryPair = (category) => pairOr(`category.${category}`, category);
  const itemPair = (key) => (items.has(key) ? [items.get(key).name_zh, items.get(key).name_en] : [key, key]);
  // An exact quantity as the API gives it ("800.000"), without trailing zeros.
  const amount = (value) => {
    const text = String(value);
    return text.includes(".") ? text.replace(/\.?0+$/, "") : text;
  };
  const quantityPair = (value, unit) => unitPair(unit).map((name) => `${amount(value)} ${name}`);
  const quantity = (value, unit) => both(quantityPair(value, unit));
  // Days of cover; null is cover without bound (nothing issued in the window).
  const daysPair = (value) => (value === null || value === undefined ? T["stock.unbounded"] : pairOf("stock.daysValue", { days: value }));
  const days = (value) => both(daysPair(value));
  const cell = (content, className = "", testid = "") => element("td", { className, dataset: testid ? { testid } : {} }, content);

  // A key for one movement. randomUUID exists only in a secure context (https or this
  // machine); a tablet on the depot's plain-http LAN gets 128 random bits as hex instead.
  function newKey() {
    if (crypto.randomUUID) return crypto.randomUUID();
    return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // --- where ---------------------------------------------------------------------------

  const chosen = () => places.find((p) => p.site === $("#stock-site").value && p.node === $("#stock-depot").value) || null;

  function fillPlaces() {
    const sites = [...new Set(places.map((p) => p.site))];
    const site = $("#stock-site");
    const before = site.value;
    setContent(site, ...sites.map((name) => element("option", { value: name }, name)));
    if (sites.includes(before)) site.value = before;
    fillDepots();
    $("#stock-none").hidden = places.length > 0;
  }

  function fillDepots() {
    const select = $("#stock-depot");
    const before = select.value;
    const nodes = places.filter((p) => p.site === $("#stock-site").value).map((p) => p.node);
    setContent(select, ...nodes.map((node) => element("option", { value: node }, node)));
    if (nodes.includes(before)) select.value = before;
    const place = chosen();
    if (place && !$("#stock-day").value) {
      const p = partsIn(place.timezone);
      $("#stock-day").value = `${p.y}-${p.mm}-${p.dd}`;
    }
    setContent($("#stock-depot-list"), ...places.filter((p) => place && p.site === place.site && p.node !== place.node)
      .map((p) => element("option", { value: p.node })));
  }

  async function open() {
    try {
      const overview = await (await api("/api/depots")).json();
      places = overview.depots.map((d) => ({ site: d.site, node: d.node, timezone: d.timezone }));
      mayEnter = Boolean(overview.may_enter_stock);
    } catch (failure) {
      if (!gp.tokenProblem(failure)) message("bad", failureWords(failure));
      return;
    }
    $("#stock-forms").hidden = !mayEnter;
    $("#stock-read-only").hidden = mayEnter;
    fillPlaces();
    await load();
  }

  // --- what the depot holds ----------------------------------------------------------------

  async function ensureItems(site) {
    if (itemsOf === site) return;
    const list = await (await api(`/api/stock/items?site=${enc(site)}`)).json();
    items = new Map(list.map((item) => [item.key, item]));
    itemsOf = site;
    fillItems();
  }

  async function load() {
    const place = chosen();
    if (!place) return;
    const { site, node } = place;
    const load = ++loads;
    const base = `/api/stock/${enc(site)}/${enc(node)}`;
    const json = (path) => api(path).then((r) => r.json());
    try {
      await ensureItems(site);
      const [held, cover, soon, entries] = await Promise.all([
        json(`${base}/on-hand`), json(`/api/stock/${enc(site)}/cover`), json(`${base}/expiring`),
        json(`${base}/entries?limit=${ENTRIES_SHOWN}`),
      ]);
      if (load !== loads) return;
      onHand = held.on_hand;
      renderCover(cover, node);
      renderOnHand(held.on_hand);
      renderExpiring(soon);
      renderTransit(held.in_transit, place);
      renderEntries(entries, place);
      fillLots();
    } catch (failure) {
      if (!gp.tokenProblem(failure)) message("bad", failureWords(failure));
    }
    loadLevel(site, load);
  }

  function renderCover(cover, node) {
    setContent($("#stock-window"), say("stock.coverWindow", { n: cover.window_days }));
    const depot = cover.depots.find((d) => d.depot === node) || { items: [], categories: [] };
    setContent($("#stock-cover-rows"), ...depot.items.map((c) => element("tr", { dataset: { testid: `cover-${c.item}` } },
      element("th", {}, both(itemPair(c.item))),
      cell(quantity(c.on_hand, c.unit), "num", "cover-on-hand"),
      cell(quantity(c.daily_issue, c.unit), "num", "cover-daily-issue"),
      cell(days(c.days), "num", "cover-days"))));
    setContent($("#stock-categories"), ...depot.categories.map((c) => element("li", { dataset: { testid: `category-${c.category}` } },
      say("stock.categoryDays", { category: categoryPair(c.category), days: daysPair(c.days) }))));
    $("#stock-targets-hidden").hidden = cover.targets !== null;
    setContent($("#stock-target-rows"), ...(cover.targets || []).map((t) => {
      const [family, key] = t.subject.split(":");
      const name = family === "item" ? itemPair(key) : categoryPair(key);
      return element("tr", { dataset: { testid: `target-${t.subject}`, below: String(t.below) } },
        element("th", {}, both(name), element("small", {}, say(t.basis === "population" ? "stock.basisPopulation" : "stock.basisIssue"))),
        cell(say("stock.targetDays", { days: t.target_days }), "num"),
        cell(days(t.days), "num", "target-days"),
        cell(say(t.below ? "stock.below" : "stock.met"), "state", "target-state"));
    }));
  }

  function renderOnHand(positions) {
    setContent($("#stock-on-hand-rows"), ...positions.map((p) => element("tr", { dataset: { testid: `on-hand-${p.item}-${p.lot}` } },
      element("th", {}, both(itemPair(p.item))), cell(p.lot || "—"), cell(p.expires_on || "—"),
      cell(p.designated_to || "—"), cell(quantity(p.quantity, p.unit), "num", "on-hand-quantity"))));
    $("#stock-no-stock").hidden = positions.length > 0;
  }

  function renderExpiring(lots) {
    setContent($("#stock-expiring"), ...lots.map((lot) => element("li", {
      dataset: { testid: `expiring-${lot.item}-${lot.lot}`, expired: String(lot.expired) },
    }, element("b", {}, both(itemPair(lot.item))), ` ${lot.lot} · ${lot.expires_on} · `,
    lot.expired ? say("stock.expired", { n: -lot.days_left }) : say("stock.daysLeft", { n: lot.days_left }),
    " · ", quantity(lot.quantity, lot.unit))));
    $("#stock-no-expiring").hidden = lots.length > 0;
  }

  function renderTransit(transfers, place) {
    setContent($("#stock-transit"), ...transfers.map((t) => {
      const item = element("li", { dataset: { testid: `transit-${t.entry_id}` } },
        element("b", {}, `#${t.entry_id} `), say("stock.route", { from: t.from_depot, to: t.to_depot }), " · ",
        both(itemPair(t.item)), t.lot ? ` ${t.lot}` : "", " · ", quantity(t.quantity, t.unit));
      if (mayEnter && t.to_depot === place.node) {
        const button = element("button", { type: "button", className: "primary", dataset: { testid: `receive-${t.entry_id}` } },
          say("stock.receiveTransfer"));
        button.addEventListener("click", () => receive(button, t.entry_id));
        item.append(button);
      }
      return item;
    }));
    $("#stock-no-transit").hidden = transfers.length > 0;
  }

  function renderEntries(entries, place) {
    setContent($("#stock-entry-rows"), ...entries.map((e) => {
      const last = element("td", {});
      if (e.reversed_by) last.append(say("stock.reversedBy", { id: e.reversed_by }));
      else if (mayEnter && e.kind !== "reversal") {
        const button = element("button", { type: "button", dataset: { testid: `reverse-${e.id}` } }, say("stock.reverse"));
        button.addEventListener("click", () => openReversal(e.id));
        last.append(button);
      }
      return element("tr", { dataset: { testid: `entry-${e.id}`, kind: e.kind } },
        cell(String(e.id), "num"), cell(both(whenIn(place.timezone, e.at))),
        cell(say(`stockKind.${e.kind}`)), cell(both(itemPair(e.item))), cell(e.lot || "—"),
        cell(quantity(e.quantity, e.unit), "num", "entry-quantity"), cell(e.who), last);
    }));
    $("#stock-no-entries").hidden = entries.length > 0;
  }

  // The site's supply alert level (H3's route); a gateway without it answers 404: no banner.
  async function loadLevel(site, load) {
    const banner = $("#stock-level");
    let level;
    try {
      level = await (await api(`/api/stock/${enc(site)}/supply-level`)).json();
    } catch (failure) {
      if (load === loads) banner.hidden = true;
      if (failure.status !== 404 && !gp.tokenProblem(failure)) message("bad", failureWords(failure));
      return;
    }
    if (load !== loads) return;
    banner.dataset.level = level.level || "none";
    const place = chosen();
    if (!level.level) {
      setContent(banner, say("stock.levelNone"));
    } else {
      setContent(banner, element("b", { dataset: { testid: "stock-level-name" } }, say(`supplyLevel.${level.level}`)), " ",
        element("span", { className: "rule", dataset: { testid: "stock-level-rule" } }, both([level.rule_zh || level.rule, level.rule_en || level.rule])));
      if (level.since && place) banner.append(" · ", say("stock.levelSince", { time: whenIn(place.timezone, level.since) }));
      for (const c of level.categories || []) {
        banner.append(" · ", c.stock_out ? say("stock.stockOut", { category: categoryPair(c.category) })
          : say("stock.tight", { category: categoryPair(c.category), days: c.tight_days }));
      }
    }
    banner.hidden = false;
  }

  // --- the daily stock report (H2's route), through fetch: the token stays in a header ----

  async function report(format) {
    const place = chosen();
    if (!place) return;
    const day = $("#stock-day").value;
    const params = new URLSearchParams({ format });
    if (day) params.set("day", day);
    try {
      const blob = await (await api(`/api/stock/${enc(place.site)}/daily-report?${params}`)).blob();
      const url = URL.createObjectURL(blob);
      if (format === "csv") {
        const link = element("a", { href: url, download: `gatepost-stock-${place.site}-${day}.csv` });
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

  // --- the movement form -------------------------------------------------------------------

  const form = () => $("#stock-entry");
  const field = (name) => form().elements.namedItem(name);
  const chosenItem = () => items.get(field("item").value);

  // <option> and <optgroup> hold plain text only: labelled in the page's language, and
  // again when it changes.
  function label(node) {
    const pair = JSON.parse(node.dataset.pair);
    if (node.tagName === "OPTGROUP") node.label = pair[lang()];
    else node.textContent = pair[lang()];
  }
  const labelled = (node, pair) => {
    node.dataset.pair = JSON.stringify(pair);
    label(node);
    return node;
  };

  function fillItems() {
    const select = field("item");
    const before = select.value;
    const groups = new Map();
    for (const item of items.values()) {
      if (!groups.has(item.category)) groups.set(item.category, labelled(element("optgroup", {}), categoryPair(item.category)));
      groups.get(item.category).append(labelled(element("option", { value: item.key }), itemPair(item.key)));
    }
    setContent(select, labelled(element("option", { value: "" }), ["—", "—"]), ...groups.values());
    if (items.has(before)) select.value = before;
    itemChosen();
  }

  function fillSources() {
    setContent(field("source"), ...SOURCES.map((s) => labelled(element("option", { value: s }), pairOr(`source.${s}`, s))));
  }

  function fillLots() {
    const key = field("item").value;
    const lots = [...new Set(onHand.filter((p) => p.item === key && p.lot).map((p) => p.lot))];
    setContent($("#stock-lot-list"), ...lots.map((lot) => element("option", { value: lot })));
  }

  // The fields a kind and an item take: the unit from the item, lot and expiry only for
  // an item tracked by lot, the expiry and the source on a receipt only.
  function itemChosen() {
    const item = chosenItem();
    setContent(field("unit"), item ? both(unitPair(item.unit)) : "—");
    const tracked = Boolean(item && item.lot_tracked);
    for (const node of $$("[data-kinds]", $("#stock-forms"))) {
      node.hidden = !node.dataset.kinds.split(" ").includes(kind);
    }
    $('[data-field="lot"]', form()).hidden = !tracked;
    if (kind === "receipt") $('[data-field="expires_on"]', form()).hidden = !tracked;
    fillLots();
    fefoSoon();
  }

  function setKind(next) {
    kind = next;
    for (const button of $$(".kinds button")) button.setAttribute("aria-pressed", String(button.dataset.kind === kind));
    form().dataset.kind = kind;
    entryKey = newKey();
    clearErrors(form());
    itemChosen();
  }

  function body() {
    const value = (name) => field(name).value.trim();
    const item = chosenItem();
    const line = { item: value("item"), quantity: value("quantity"), unit: item ? item.unit : "",
      lot: item && item.lot_tracked ? value("lot") : "" };
    if (kind === "receipt") {
      const receipt = { ...line, source: value("source"), designated_to: value("designated_to") };
      if (item && item.lot_tracked && value("expires_on")) receipt.expires_on = value("expires_on");
      return receipt;
    }
    if (kind === "issue") {
      return { ...line, applicant_unit: value("applicant_unit"), approver: value("approver"),
        application_id: value("application_id"), designated_to: value("designated_to") };
    }
    if (kind === "transfer-out") return { ...line, to_depot: value("to_depot"), designated_to: value("designated_to") };
    return { ...line, designated_to: value("designated_to"), reason: value("reason") };
  }

  async function post(path, payload, key) {
    return api(path, {
      method: "POST", body: JSON.stringify(payload),
      headers: { "Content-Type": "application/json", "Idempotency-Key": key },
    });
  }

  // Written, or written before under this key (a double tap, a retry): said, and a new key.
  async function written(response) {
    const entry = await response.json();
    const replayed = response.headers.get("Idempotent-Replayed") === "true";
    message("ok", say(replayed ? "stock.replayed" : "stock.written", { id: entry.id }));
    return entry;
  }

  async function submit(event) {
    event.preventDefault();
    const place = chosen();
    if (sending || !place) return;  // a second tap while the first is on its way
    sending = true;
    const button = $('[data-testid="stock-submit"]');
    button.disabled = true;
    clearErrors(form());
    try {
      const path = `/api/stock/${enc(place.site)}/${enc(place.node)}/${PATHS[kind]}`;
      await written(await post(path, body(), entryKey));
      clearForm();
      await load();
    } catch (failure) {
      refused(form(), failure);
    } finally {
      sending = false;
      button.disabled = false;
    }
  }

  // Cleared for the next movement, which gets a key of its own; the kind and item stay.
  function clearForm() {
    for (const name of ["quantity", "lot", "expires_on", "designated_to", "applicant_unit", "approver",
      "application_id", "to_depot", "reason"]) field(name).value = "";
    field("source").value = SOURCES[0];
    entryKey = newKey();
    clearErrors(form());
    itemChosen();
  }

  // --- refusals, next to the field they name ---------------------------------------------

  function clearErrors(root) {
    for (const node of $$(".field-error", root)) node.remove();
    for (const node of $$("[aria-invalid]", root)) node.removeAttribute("aria-invalid");
    const general = $(".form-error", root);
    general.hidden = true;
    setContent(general);
  }

  // What the API refused, as [{ field, words }]: a 422 names its fields ("body.quantity");
  // a 409/404 has a reason code and a detail that starts with the field ("quantity: …").
  function problems(failure) {
    const answer = failure.body || {};
    if (failure.status === 422 && Array.isArray(answer.fields)) {
      return answer.fields.map((f) => {
        const name = String(f.field).replace(/^body\./, "");
        return { field: name, words: T[`stockField.${name}`] ? `stockField.${name}` : "stockField.other", detail: f.message };
      });
    }
    const name = (/^(\w+):/.exec(answer.detail || "") || [])[1] || "";
    const words = T[`stockError.${failure.reason}`] ? `stockError.${failure.reason}` : null;
    return [{ field: name, words, detail: answer.detail || "" }];
  }

  function refused(root, failure) {
    if (failure.status === 0) {  // the answer was lost: the same key goes again
      showGeneral(root, say("stock.retry"));
      return;
    }
    if (failure.status === 401 && gp.tokenProblem(failure)) return;
    for (const problem of problems(failure)) {
      const words = problem.words ? say(problem.words) : failureWords(failure);
      const place = problem.field && $(`.field[data-field="${CSS.escape(problem.field)}"]`, root);
      if (place && !place.hidden) {
        place.append(element("span", { className: "field-error", title: problem.detail, dataset: { testid: `stock-error-${problem.field}` } }, words));
        const input = $("input, select", place);
        if (input) input.setAttribute("aria-invalid", "true");
      } else {
        showGeneral(root, words, problem.detail);
      }
    }
    // A refusal keeps no key: the corrected movement goes with the same one. A conflict
    // means the key was used for another movement: the form takes a new one.
    if (failure.reason === "idempotency-conflict") {
      if (root === form()) entryKey = newKey();
      else if (reversing) reversing.key = newKey();
    }
  }

  function showGeneral(root, words, detail = "") {
    const general = $(".form-error", root);
    general.append(element("span", { title: detail }, words));
    general.hidden = false;
  }

  // --- FEFO: which lots to issue from first (a suggestion; the keeper picks the lot) ----

  function fefoSoon() {
    clearTimeout(fefoTimer);
    const box = $("#stock-fefo");
    const item = chosenItem();
    const amountAsked = field("quantity").value.trim();
    if (kind !== "issue" || !item || !item.lot_tracked || !/^\d+(\.\d+)?$/.test(amountAsked) || Number(amountAsked) <= 0) {
      box.hidden = true;
      return;
    }
    fefoTimer = setTimeout(() => fefo(item, amountAsked), FEFO_WAIT_MS);
  }

  async function fefo(item, asked) {
    const place = chosen();
    const box = $("#stock-fefo");
    const params = new URLSearchParams({ quantity: asked, designated_to: field("designated_to").value.trim() });
    let answer;
    try {
      answer = await (await api(`/api/stock/${enc(place.site)}/${enc(place.node)}/items/${enc(item.key)}/fefo?${params}`)).json();
    } catch (failure) {
      box.hidden = true;
      return;
    }
    if (answer.item !== field("item").value) return;
    setContent(box, element("b", {}, say("stock.fefo")));
    for (const draw of answer.draws) {
      const use = element("button", { type: "button", dataset: { testid: `fefo-use-${draw.lot}` } }, say("stock.useLot"));
      use.addEventListener("click", () => {
        field("lot").value = draw.lot;
        field("quantity").value = amount(draw.quantity);
      });
      box.append(element("div", { className: "draw", dataset: { testid: `fefo-${draw.lot}` } },
        say("stock.fefoDraw", { lot: draw.lot, expires: draw.expires_on || "—", quantity: quantityPair(draw.quantity, answer.unit) }),
        " ", use));
    }
    if (Number(answer.missing) > 0) {
      box.append(element("div", { className: "missing", dataset: { testid: "fefo-missing" } },
        say("stock.fefoMissing", { quantity: quantityPair(answer.missing, answer.unit) })));
    }
    box.hidden = kind !== "issue";
  }

  // --- a transfer received, an entry reversed ------------------------------------------------

  async function receive(button, id) {
    const place = chosen();
    if (button.disabled || !place) return;
    button.disabled = true;
    if (!receiveKeys.has(id)) receiveKeys.set(id, newKey());
    try {
      await written(await post(`/api/stock/${enc(place.site)}/${enc(place.node)}/transfers/${id}/receipt`, {}, receiveKeys.get(id)));
      receiveKeys.delete(id);
      await load();
    } catch (failure) {
      button.disabled = false;
      if (failure.status === 0) { message("bad", say("stock.retry")); return; }
      receiveKeys.delete(id);
      const [problem] = problems(failure);
      message("bad", problem.words ? say(problem.words) : failureWords(failure));
    }
  }

  function openReversal(id) {
    reversing = { id, key: newKey() };
    const reversal = $("#stock-reversal");
    reversal.elements.namedItem("reason").value = "";
    clearErrors(reversal);
    setContent($("#stock-reversal-title"), say("stock.reversalOf", { id }));
    reversal.hidden = false;
    reversal.elements.namedItem("reason").focus();
  }

  async function submitReversal(event) {
    event.preventDefault();
    const place = chosen();
    const reversal = $("#stock-reversal");
    if (sending || !place || !reversing) return;
    sending = true;
    clearErrors(reversal);
    try {
      const path = `/api/stock/${enc(place.site)}/${enc(place.node)}/entries/${reversing.id}/reversal`;
      await written(await post(path, { reason: reversal.elements.namedItem("reason").value.trim() }, reversing.key));
      reversing = null;
      reversal.hidden = true;
      await load();
    } catch (failure) {
      refused(reversal, failure);
    } finally {
      sending = false;
    }
  }

  // --- the view ------------------------------------------------------------------------------

  // Shown whenever body[data-view] says so, whoever set it (a tab, the address, a token given).
  function follow() {
    clearInterval(timer);
    if (document.body.dataset.view !== "stock" || !gp.token()) return;
    open();
    timer = setInterval(load, REFRESH_MS);
  }
  new MutationObserver(follow).observe(document.body, { attributes: true, attributeFilter: ["data-view"] });
  new MutationObserver(() => $$("#stock [data-pair]").forEach(label))
    .observe(document.documentElement, { attributes: true, attributeFilter: ["data-lang"] });

  $("#stock-site").addEventListener("change", () => { fillDepots(); load(); });
  $("#stock-depot").addEventListener("change", () => { fillDepots(); load(); });
  $("#stock-report-csv").addEventListener("click", (event) => { event.preventDefault(); report("csv"); });
  $("#stock-report-print").addEventListener("click", (event) => { event.preventDefault(); report("html"); });
  for (const button of $$(".kinds button")) button.addEventListener("click", () => setKind(button.dataset.kind));
  form().addEventListener("submit", submit);
  form().addEventListener("reset", (event) => { event.preventDefault(); clearForm(); });
  field("item").addEventListener("change", () => { clearErrors(form()); itemChosen(); });
  field("quantity").addEventListener("input", fefoSoon);
  $("#stock-reversal").addEventListener("submit", submitReversal);
  $("#stock-reversal").addEventListener("reset", (event) => {
    event.preventDefault();
    reversing = null;
    $("#stock-reversal").hidden = true;
  });
  fillSources();
  setKind("receipt");
  follow();  // depots.js showed the view the address asked for before this script ran
})();
