// The stock view: a depot's on hand by lot, its days of cover against the site's reserve
// targets, expiring lots, transfers in transit and its latest ledger entries, the site's
// supply alert level and its daily stock report. A depot or admin token also gets the
// forms (stock-forms.js); the command center sees the same, read only.
"use strict";
(() => {
  const gp = window.gatepost;
  const { $, T, say, both, pairOf, partsIn, whenIn, setContent, element, message, api, failureWords } = gp;
  const ENTRIES_SHOWN = 20;
  const REFRESH_MS = 30000;

  let places = [];  // [{ site, node, timezone }] the token sees (GET /api/depots)
  let mayEnter = false;  // a depot or admin token: the forms are shown
  let items = new Map();  // catalogue key -> item of the chosen site (GET /api/stock/items)
  let itemsOf = "";  // the site `items` is of
  let onHand = [];  // the chosen depot's positions, for the forms' lot list
  let loads = 0;  // a newer load makes an older answer stale
  let timer = 0;
  const forms = () => gp.stockForms;  // stock-forms.js, loaded after this script

  const enc = encodeURIComponent;
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
    forms().itemsChanged();
  }

  async function load() {
    const place = chosen();
    if (!place) return;
    const { site, node } = place;
    const turn = ++loads;
    const base = `/api/stock/${enc(site)}/${enc(node)}`;
    const json = (path) => api(path).then((r) => r.json());
    try {
      await ensureItems(site);
      // The level with the rest, drawn in the same turn: a banner appearing later would
      // move the buttons under a keeper's finger as they tap.
      const [held, cover, soon, entries, level] = await Promise.all([
        json(`${base}/on-hand`), json(`/api/stock/${enc(site)}/cover`), json(`${base}/expiring`),
        json(`${base}/entries?limit=${ENTRIES_SHOWN}`),
        json(`/api/stock/${enc(site)}/supply-level`).catch((failure) => ({ failure })),
      ]);
      if (turn !== loads) return;
      renderLevel(level);
      onHand = held.on_hand;
      renderCover(cover, node);
      renderOnHand(held.on_hand);
      renderExpiring(soon);
      renderTransit(held.in_transit, place);
      renderEntries(entries, place);
      forms().stockChanged();
    } catch (failure) {
      if (!gp.tokenProblem(failure)) message("bad", failureWords(failure));
    }
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
    $('[data-testid="stock-targets"]').hidden = cover.targets === null;
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
        button.addEventListener("click", () => forms().receive(button, t.entry_id));
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
        button.addEventListener("click", () => forms().openReversal(e.id));
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
  function renderLevel(level) {
    const banner = $("#stock-level");
    if (level.failure) {
      banner.hidden = true;
      const { failure } = level;
      if (failure.status !== 404 && !gp.tokenProblem(failure)) message("bad", failureWords(failure));
      return;
    }
    banner.dataset.level = level.level || "none";
    const place = chosen();
    if (!level.level) {
      setContent(banner, say("stock.levelNone"));
    } else {
      setContent(banner, element("b", { dataset: { testid: "stock-level-name" } }, say(`supplyLevel.${level.level}`)), " ",
        element("span", { className: "rule", dataset: { testid: "stock-level-rule" } }, both([level.rule_zh || level.rule, level.rule_en || level.rule])));
      if (level.since && place) banner.append(" · ", say("stock.levelSince", { time: whenIn(place.timezone, level.since) }));
      for (const c of (level.categories || []).filter((each) => each.stock_out || each.tight_days > 0)) {
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

  // --- the view ------------------------------------------------------------------------------

  // Shown whenever body[data-view] says so, whoever set it (a tab, the address, a token given).
  function follow() {
    clearInterval(timer);
    if (document.body.dataset.view !== "stock" || !gp.token()) return;
    open();
    timer = setInterval(load, REFRESH_MS);
  }
  new MutationObserver(follow).observe(document.body, { attributes: true, attributeFilter: ["data-view"] });

  $("#stock-site").addEventListener("change", () => { fillDepots(); load(); });
  $("#stock-depot").addEventListener("change", () => { fillDepots(); load(); });
  $("#stock-report-csv").addEventListener("click", (event) => { event.preventDefault(); report("csv"); });
  $("#stock-report-print").addEventListener("click", (event) => { event.preventDefault(); report("html"); });

  gp.stock = {
    chosen, load, enc, amount, pairOr, unitPair, categoryPair, itemPair, quantityPair,
    item: (key) => items.get(key), items: () => items.values(), onHand: () => onHand,
    mayEnter: () => mayEnter,
  };
  follow();  // depots.js showed the view the address asked for before this script ran
})();
