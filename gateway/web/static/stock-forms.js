// The stock view's forms (a depot or admin token): a receipt, an issue (with the first
// expiry first out suggestion), a transfer out, a stocktake adjustment; receiving a
// transfer in transit and reversing an entry (from the lists stock.js draws).
// Every movement carries an Idempotency-Key made when its form is opened or cleared, so a
// double tap, or a retry after an answer lost on the way, sends the same key: the ledger
// writes it once and answers the first entry again.
"use strict";
(() => {
  const gp = window.gatepost;
  const { $, $$, T, say, both, whenIn, setContent, element, message, api, failureWords } = gp;
  const { chosen, load, enc, amount, pairOr, unitPair, categoryPair, itemPair, quantityPair } = gp.stock;
  const FEFO_WAIT_MS = 300;
  const PATHS = { receipt: "receipts", issue: "issues", "transfer-out": "transfers", adjustment: "adjustments" };
  const SOURCES = ["purchase", "allocation", "donation"];

  let kind = "receipt";
  let entryKey = "";  // the movement form's Idempotency-Key
  let reversing = null;  // { id, key }: the entry the reversal form is open for
  const receiveKeys = new Map();  // transfer-out id -> the key of its receipt here
  let sending = false;
  let fefoTimer = 0;
  const lang = () => (document.documentElement.dataset.lang === "en" ? 1 : 0);

  // A key for one movement. randomUUID exists only in a secure context (https or this
  // machine); a tablet on the depot's plain-http LAN gets 128 random bits as hex instead.
  function newKey() {
    if (crypto.randomUUID) return crypto.randomUUID();
    return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // --- the movement form -------------------------------------------------------------------

  const form = () => $("#stock-entry");
  const field = (name) => form().elements.namedItem(name);
  const chosenItem = () => gp.stock.item(field("item").value);

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
    for (const item of gp.stock.items()) {
      if (!groups.has(item.category)) groups.set(item.category, labelled(element("optgroup", {}), categoryPair(item.category)));
      groups.get(item.category).append(labelled(element("option", { value: item.key }), itemPair(item.key)));
    }
    setContent(select, labelled(element("option", { value: "" }), ["—", "—"]), ...groups.values());
    if (gp.stock.item(before)) select.value = before;
    itemChosen();
  }

  function fillSources() {
    setContent(field("source"), ...SOURCES.map((s) => labelled(element("option", { value: s }), pairOr(`source.${s}`, s))));
  }

  function fillLots() {
    const key = field("item").value;
    const lots = [...new Set(gp.stock.onHand().filter((p) => p.item === key && p.lot).map((p) => p.lot))];
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

  // Written, or written before under this key (a double tap, a retry): said either way.
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
        field("designated_to").value = draw.designated_to;
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

  // --- the day's stock report: submitted or not; a keeper submits it --------------------------

  let reportFor = "";  // site/depot/day the key is for
  let reportKey = "";  // its submission's Idempotency-Key, until the gateway has it

  async function dayReport() {
    const place = chosen();
    const day = $("#stock-day").value;
    const state = setContent($("#stock-report-state"));
    $("#stock-report-submit").hidden = !place || !day || !gp.stock.mayEnter();
    if (!place || !day) return;
    if (`${place.site}/${place.node}/${day}` !== reportFor) {
      reportFor = `${place.site}/${place.node}/${day}`;
      reportKey = newKey();
    }
    let versions;
    try {
      versions = await (await api(`/api/stock/${enc(place.site)}/${enc(place.node)}/daily-reports/${enc(day)}`)).json();
    } catch (failure) {
      return;  // a day not begun yet (422) has no report to show
    }
    const last = versions[versions.length - 1];
    state.dataset.submitted = String(Boolean(last));
    if (!last) {
      state.append(say("stock.reportNone"));
      return;
    }
    state.append(say("stock.reportVersion", { version: last.version, time: whenIn(place.timezone, last.at), who: last.who }));
    if (last.late) state.append(" ", say("stock.reportLate"));
  }

  async function submitDay(event) {
    const button = event.currentTarget;
    const place = chosen();
    const day = $("#stock-day").value;
    if (button.disabled || !place || !day || reportFor !== `${place.site}/${place.node}/${day}`) return;
    button.disabled = true;
    try {
      const path = `/api/stock/${enc(place.site)}/${enc(place.node)}/daily-reports/${enc(day)}`;
      const response = await post(path, { note: "" }, reportKey);
      const submitted = await response.json();
      const replayed = response.headers.get("Idempotent-Replayed") === "true";
      message("ok", say(replayed ? "stock.reportReplayed" : "stock.reportSubmitted", { version: submitted.version }));
      reportKey = newKey();  // another submission is the day's next version
    } catch (failure) {
      if (failure.status === 0) message("bad", say("stock.retry"));  // the same key goes again
      else if (failure.status === 422) message("bad", say("stockField.day"));
      else if (!(failure.status === 401 && gp.tokenProblem(failure))) message("bad", failureWords(failure));
    } finally {
      button.disabled = false;
    }
    dayReport();
  }

  // --- the form's events -----------------------------------------------------------------------

  new MutationObserver(() => $$("#stock [data-pair]").forEach(label))
    .observe(document.documentElement, { attributes: true, attributeFilter: ["data-lang"] });
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

  $("#stock-day").addEventListener("change", dayReport);
  $("#stock-report-submit").addEventListener("click", submitDay);

  // stock.js calls these: new items (another site), the depot read again.
  const stockChanged = () => {
    fillLots();
    dayReport();
  };
  gp.stockForms = { itemsChanged: fillItems, stockChanged, receive, openReversal };
})();
