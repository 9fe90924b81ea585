// Words of the dashboard in both languages, the language switch, the token and fetch.
// Loaded first; the other scripts take what they need from window.gatepost.
"use strict";
(() => {
  // Words the page needs beyond the static HTML: key -> [简体中文, English].
  const T = {
    live: ["● 实时", "● Live"],
    connecting: ["正在连接…", "Connecting…"],
    lost: ["连接中断，正在重连…", "Connection lost, reconnecting…"],
    online: ["● 在线", "● Online"],
    offline: ["✕ 离线", "✕ Offline"],
    unattended: ["⚠ 无人值守", "⚠ Unattended"],
    notListed: ["清单外", "not in inventory"],
    onDuty: ["值班：{id}", "On duty: {id}"],
    nobodyOnDuty: ["无人值班", "Nobody on duty"],
    lastSeen: ["{age}前", "{age} ago"],
    neverSeen: ["从未上线", "Never seen"],
    since: ["自 {time} 起", "Since {time}"],
    siteTotals: ["合计", "Total"],
    personChecks: ["人次", "persons"],
    vehicleChecks: ["车次", "vehicles"],
    fever: ["体温异常", "fever"],
    turnedBack: ["劝返", "turned back"],
    openHolds: ["待处理", "open holds"],
    allow: ["✓ 通行", "✓ PASS"],
    hold: ["⚠ 暂留", "⚠ HOLD"],
    deny: ["✕ 禁止", "✕ STOP"],
    green: ["绿码", "green"], yellow: ["黄码", "yellow"], red: ["红码", "red"],
    person: ["人员", "person"], vehicle: ["车辆", "vehicle"],
    in: ["进", "in"], out: ["出", "out"],
    critical: ["紧急", "CRITICAL"], warning: ["警告", "warning"], info: ["提示", "info"],
    acknowledge: ["确认", "Acknowledge"],
    acknowledgedBy: ["{who} 已确认 {time}", "Acknowledged by {who} at {time}"],
    acknowledged: ["已确认告警", "Alarm acknowledged"],
    reported: ["已报告", "Reported"],
    "zero-report": ["零报告", "Zero report"],
    missing: ["✕ 未报告", "✕ MISSING"],
    differs: ["≠ 与网关计数不符", "≠ differs from the gateway"],
    gatewayCount: ["网关 {n}", "gateway {n}"],
    reportSummary: [
      "{site} · {day} · {start} → {end} · 应报 {expected} · 未报告 {missing} · 零报告 {zero} · 不符 {mismatches}",
      "{site} · {day} · {start} → {end} · expected {expected} · missing {missing} · zero reports {zero} · differing {mismatches}",
    ],
    notClosed: ["（尚未截止）", "(not closed yet)"],
    noToken: ["请输入访问令牌，或用带 ?token= 的链接打开本页", "Enter an access token, or open this page with ?token= in the link"],
    tokenRefused: ["令牌无效或已撤销", "The token is unknown or revoked"],
    roleRefused: ["此令牌无权查看指挥中心", "This token may not see the command center"],
    network: ["无法连接网关，请重试", "Cannot reach the gateway, try again"],
    server: ["网关出错（{status}）", "The gateway failed ({status})"],
    "alarm-cleared": ["该告警已解除", "That alarm is already cleared"],
    "unknown-alarm": ["该告警不存在", "No such alarm"],
    "unknown-site": ["没有该站点", "No such site"],
    s: ["{n}秒", "{n} s"], min: ["{n}分钟", "{n} min"], h: ["{n}小时", "{n} h"], d: ["{n}天", "{n} days"],
  };
  // Alarm kinds (AlertKind): kind -> [简体中文, English].
  const KINDS = {
    fever: ["体温异常", "Fever"],
    "red-code": ["红码", "Red code"],
    "node-offline": ["节点离线", "Node offline"],
    "gate-unattended": ["卡口无人值守", "Gate unattended"],
    "report-missing": ["日报未报", "Daily report missing"],
    "disinfection-low": ["消毒次数不足", "Too few disinfections"],
    "trust-stale": ["信任列表过期", "Trust list stale"],
    "clock-skew": ["时钟偏差", "Clock off"],
    "data-loss": ["数据缺失", "Data missing"],
    "depot-climate": ["仓库温湿度异常", "Depot climate"],
  };
  const REASONS = window.gatepostReasons || {};
  const LANGUAGE_KEY = "gatepost.dashboard.language";
  const TOKEN_KEY = "gatepost.dashboard.token";

  const gp = { state: null };
  window.gatepost = gp;

  // --- words -------------------------------------------------------------------------

  const { $, $$, fill, both, setContent, element } = window.gatepostText;

  const word = (key) => T[key] || [key, key];
  const say = (key, vars) => both(word(key), vars);
  const kindPair = (kind) => KINDS[kind] || [kind, kind];
  const reasonPair = (code) => (REASONS[code] ? [REASONS[code].zh, REASONS[code].en] : word(code));

  function agePair(seconds) {
    const s = Math.max(0, Math.round(seconds));
    const pick = (key, n) => [fill(T[key][0], { n }), fill(T[key][1], { n })];
    if (s < 90) return pick("s", s);
    if (s < 5400) return pick("min", Math.round(s / 60));
    if (s < 172800) return pick("h", Math.round(s / 3600));
    return pick("d", Math.round(s / 86400));
  }

  const clockTime = (iso) => new Date(iso).toLocaleTimeString("zh-CN", { hour12: false });
  const dateTime = (iso) => new Date(iso).toLocaleString("zh-CN", { hour12: false });
  // A time the server wrote with the site's own offset (a cut-off), shown as the site's
  // wall clock whatever zone the browser is in: "2024-03-05 17:00".
  const siteTime = (iso) => iso.slice(0, 16).replace("T", " ");
  const number = (n) => (n === null || n === undefined ? "—" : n.toLocaleString("en-US"));

  // --- language ----------------------------------------------------------------------

  function applyLanguage(lang) {
    const root = document.documentElement;
    root.dataset.lang = lang;
    root.lang = lang === "zh" ? "zh-CN" : "en";
    document.title = lang === "zh" ? "指挥中心 · Gatepost" : "Command center · Gatepost";
  }

  $("#language").addEventListener("click", () => {
    const next = document.documentElement.dataset.lang === "zh" ? "en" : "zh";
    localStorage.setItem(LANGUAGE_KEY, next);
    applyLanguage(next);
  });
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

  class ApiFailure extends Error {
    constructor(status, reason) {
      super(`${status} ${reason}`);
      this.status = status;
      this.reason = reason;
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
      let reason = "";
      try { reason = (await response.json()).reason || ""; } catch (error) { reason = ""; }
      throw new ApiFailure(response.status, reason);
    }
    return response;
  }

  // Words for a failure: the token ones show the token form instead.
  function failureWords(failure) {
    if (failure.status === 0) return say("network");
    if (T[failure.reason]) return say(failure.reason);
    return say("server", { status: failure.status });
  }

  Object.assign(gp, {
    T, $, $$, fill, both, say, word, kindPair, reasonPair, agePair, clockTime, dateTime, siteTime, number,
    setContent, element, applyLanguage, message, token, setToken, api, ApiFailure, failureWords,
  });
})();
