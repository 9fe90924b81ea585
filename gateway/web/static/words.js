// The dashboard's words from the catalogue, times in the site's zone, the language switch,
// the token and fetch. Loaded first; the other scripts take what they need from
// window.gatepost.
"use strict";
(() => {
  // The catalogue, words.json, inlined by the gateway: key -> [简体中文, English].
  const T = window.gatepostWords || {};
  const REASONS = window.gatepostReasons || {};
  const LANGUAGE_KEY = "gatepost.dashboard.language";
  const TOKEN_KEY = "gatepost.dashboard.token";

  const gp = { state: null };
  window.gatepost = gp;

  // --- words -------------------------------------------------------------------------

  const { $, $$, fill, both, setContent, element } = window.gatepostText;

  const complete = (pair) => Array.isArray(pair) && Boolean(pair[0]) && Boolean(pair[1]);

  // The words of `key` in both languages. A key the catalogue lacks, or has without one
  // of its languages, shows the key itself, marked data-missing-word for the tests.
  function say(key, vars = {}) {
    const pair = T[key];
    if (complete(pair)) return both(pair, vars);
    const fragment = both([(pair && pair[0]) || key, (pair && pair[1]) || key], vars);
    for (const span of fragment.children) span.dataset.missingWord = key;
    return fragment;
  }

  // [zh, en] of `key`, filled: a value inside other words (say's vars take pairs).
  function pairOf(key, vars = {}) {
    const pair = complete(T[key]) ? T[key] : [key, key];
    return [0, 1].map((i) => fill(pair[i], Object.fromEntries(
      Object.entries(vars).map(([name, value]) => [name, Array.isArray(value) ? value[i] : value]))));
  }

  function reasonWords(code) {
    return REASONS[code] ? both([REASONS[code].zh, REASONS[code].en]) : say(`reason.${code}`);
  }

  // Every [data-word] element under `root` gets its entry's words.
  function fillWords(root) {
    for (const node of $$("[data-word]", root)) setContent(node, say(node.dataset.word));
  }

  function agePair(seconds) {
    const s = Math.max(0, Math.round(seconds));
    if (s < 90) return pairOf("age.s", { n: s });
    if (s < 5400) return pairOf("age.min", { n: Math.round(s / 60) });
    if (s < 172800) return pairOf("age.h", { n: Math.round(s / 3600) });
    return pairOf("age.d", { n: Math.round(s / 86400) });
  }

  const number = (n) => (n === null || n === undefined ? "—" : n.toLocaleString("en-US"));

  // --- the site's time -----------------------------------------------------------------
  // Every time is shown in the site's zone (its config), never the browser's: an office
  // PC set to UTC still shows the gate's 08:00 as 08:00.

  const formats = new Map();
  function formatFor(zone) {
    if (!formats.has(zone)) {
      let made;
      try {
        made = new Intl.DateTimeFormat("en-GB", {
          timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
          hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "longOffset",
        });
      } catch (error) {
        made = formatFor("UTC");
      }
      formats.set(zone, made);
    }
    return formats.get(zone);
  }

  // The parts the catalogue's format.* entries take, of `when` (ISO text or Date) in `zone`.
  function partsIn(zone, when = new Date()) {
    const p = {};
    for (const { type, value } of formatFor(zone).formatToParts(new Date(when))) p[type] = value;
    return {
      y: p.year, mm: p.month, dd: p.day, hh: p.hour, mi: p.minute, ss: p.second,
      m: String(Number(p.month)), d: String(Number(p.day)), h: String(Number(p.hour)),
      offset: (p.timeZoneName || "").replace("GMT", ""),
    };
  }

  const clockIn = (zone, when) => {
    const p = partsIn(zone, when);
    return `${p.hh}:${p.mi}:${p.ss}`;
  };

  // A time of today (the site's today) as HH:MM:SS; an older one with its date: [zh, en].
  function whenIn(zone, when) {
    const p = partsIn(zone, when);
    const today = partsIn(zone);
    if (p.y === today.y && p.mm === today.mm && p.dd === today.dd) {
      const time = `${p.hh}:${p.mi}:${p.ss}`;
      return [time, time];
    }
    return pairOf("format.monthDayTime", p);
  }

  // The zone as people there call it (北京时间), else its UTC offset: [zh, en].
  function zoneName(zone) {
    if (complete(T[`zone.${zone}`])) return T[`zone.${zone}`];
    return pairOf("zone.other", { offset: partsIn(zone).offset });
  }

  // The zone of a site in the newest snapshot (the first site's for one not listed).
  function zoneOf(site) {
    const sites = (gp.state && gp.state.sites) || [];
    const found = sites.find((each) => each.site === site) || sites[0];
    return found ? found.timezone : "UTC";
  }

  // --- language ----------------------------------------------------------------------

  function applyLanguage(lang) {
    const root = document.documentElement;
    root.dataset.lang = lang;
    root.lang = lang === "zh" ? "zh-CN" : "en";
    document.title = pairOf("page.title")[lang === "zh" ? 0 : 1];
  }

  $("#language").addEventListener("click", () => {
    const next = document.documentElement.dataset.lang === "zh" ? "en" : "zh";
    localStorage.setItem(LANGUAGE_KEY, next);
    applyLanguage(next);
  });
  fillWords(document);
  applyLanguage(localStorage.getItem(LANGUAGE_KEY) === "en" ? "en" : "zh");

  // --- messages ----------------------------------------------------------------------

  let messageTimer = 0;
  function message(kind, fragment) {
    const box = $("#message");
    box.dataset.kind = kind;
    setContent(box, fragment);
    box.hidden = false;
    clearTimeout(messageTimer);
    messageTimer = setTimeout(() => { box.hidden = true; }, kind === "ok" ? 5000 : 12000);
  }

  // --- the token and the API ---------------------------------------------------------

  // The link carries ?token= once: kept for this tab only, and gone from the address bar
  // (and so from history and bookmarks) before anything else runs.
  function takeToken() {
    const url = new URL(window.location.href);
    const given = url.searchParams.get("token");
    if (given) {
      sessionStorage.setItem(TOKEN_KEY, given);
      url.searchParams.delete("token");
      history.replaceState(null, "", url.pathname + url.search + url.hash);
    }
  }
  takeToken();

  const token = () => sessionStorage.getItem(TOKEN_KEY) || "";
  const setToken = (value) => sessionStorage.setItem(TOKEN_KEY, value);

  // body: the error's JSON (reason, detail, and a 422's fields), {} when it had none.
  class ApiFailure extends Error {
    constructor(status, reason, body = {}) {
      super(`${status} ${reason}`);
      this.status = status;
      this.reason = reason;
      this.body = body;
    }
  }

  // fetch with the bearer token; an error answer throws ApiFailure with its reason code.
  async function api(path, options = {}) {
    let response;
    try {
      response = await fetch(path, {
        ...options,
        headers: { ...(options.headers || {}), Authorization: `Bearer ${token()}` },
      });
    } catch (error) {
      throw new ApiFailure(0, "network");
    }
    if (!response.ok) {
      let body = {};
      try { body = (await response.json()) || {}; } catch (error) { body = {}; }
      throw new ApiFailure(response.status, body.reason || "", body);
    }
    return response;
  }

  // Words for a failure: the token ones show the token form instead.
  function failureWords(failure) {
    if (failure.status === 0) return say("error.network");
    if (complete(T[`error.${failure.reason}`])) return say(`error.${failure.reason}`);
    return say("error.server", { status: failure.status });
  }

  Object.assign(gp, {
    T, $, $$, fill, both, say, pairOf, reasonWords, fillWords, agePair, number,
    partsIn, clockIn, whenIn, zoneName, zoneOf,
    setContent, element, applyLanguage, message, token, setToken, api, ApiFailure, failureWords,
  });
})();
