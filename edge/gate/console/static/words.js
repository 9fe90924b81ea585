// Words of the console page: both languages side by side, and small DOM helpers.
// Loaded first; the other scripts take what they need from window.gatepost.
"use strict";
(() => {
  // Words the page itself needs beyond the static HTML: key -> [简体中文, English].
  const T = {
    allow: ["✓ 通行", "✓ PASS"],
    hold: ["⚠ 暂留", "⚠ HOLD"],
    deny: ["✕ 禁止", "✕ STOP"],
    none: ["等待检测", "Waiting for the next check"],
    compareId: ["核对身份证", "Compare with ID card"],
    plate: ["车牌", "Plate"],
    codeColour: ["健康码", "Code"],
    green: ["绿码", "green"], yellow: ["黄码", "yellow"], red: ["红码", "red"],
    at: ["时间 {time}（{age}前）", "at {time} ({age} ago)"],
    live: ["● 实时", "● Live"],
    connecting: ["正在连接…", "Connecting…"],
    linkLost: ["与卡口主机断开，正在重连…", "Lost the gate node, reconnecting…"],
    onDuty: ["值班：", "On duty:"],
    chooseVolunteer: ["请点选您的编号", "Tap your id"],
    noVolunteer: ["无人在岗：请先扫工作证上岗", "No one on duty: scan a badge to start a shift"],
    toShift: ["去上岗", "Start shift"],
    brokerOk: ["服务器：已连接", "Broker: connected"],
    brokerDown: ["离线：事件已保存，恢复后发送", "Offline, events are kept and sent later"],
    outbox: ["待发送 {depth} / {capacity}", "Outbox {depth} / {capacity}"],
    volunteers: ["在岗：{ids}", "On duty: {ids}"],
    nobody: ["无", "none"],
    trustAge: ["信任列表：{age}前", "Trust list: {age} old"],
    trustNone: ["信任列表：无", "Trust list: none"],
    s: ["{n}秒", "{n} s"], min: ["{n}分钟", "{n} min"], h: ["{n}小时", "{n} h"], d: ["{n}天", "{n} days"],
    ok: ["正常", "ok"], fault: ["故障", "fault"], unplugged: ["未连接", "unplugged"],
    disabled: ["已停用", "disabled"],
    scanner: ["扫码器", "Scanner"], thermometer: ["测温仪", "Thermometer"],
    barrier: ["道闸", "Barrier"], camera: ["摄像头", "Camera"],
    released: ["已复测放行", "Re-measured and released"],
    registered: ["已登记", "Registered"],
    referred: ["已转留观室", "Sent to the observation room"],
    "turned-back": ["已劝返", "Turned back"],
    logged: ["已记录消毒：{area}", "Disinfection logged: {area}"],
    hut: ["岗亭", "hut"], "observation-room": ["留观室", "observation room"],
    "vehicle-lane": ["车道", "vehicle lane"],
    shiftStarted: ["已上岗：{name}（{id}）", "Shift started: {name} ({id})"],
    shiftEnded: ["已下岗：{name}（{id}）", "Shift ended: {name} ({id})"],
    registeredId: ["登记成功", "Registration saved"],
    registeringFor: ["为等待人员登记：{who}", "Registering the person held: {who}"],
    holdGone: ["该人员已在别处处理", "That person was already dealt with"],
    occupant: ["第{n}位", "Occupant {n}"],
    remove: ["删除", "Remove"],
    enterTemperature: ["请输入复测体温", "Enter the re-measured temperature"],
    fixFields: ["请更正标出的内容", "Please correct the marked fields"],
    "unknown-hold": ["此人已被处理或不在队列中", "This hold was already resolved or is not waiting"],
    "not-on-duty": ["该志愿者未在岗", "That volunteer is not on duty"],
    network: ["无法连接卡口主机，请重试", "Cannot reach the gate node, try again"],
    server: ["卡口主机出错（{status}），请重试", "The gate node failed ({status}), try again"],
    refused: ["被拒绝：{reason}", "Refused: {reason}"],
  };

  // Shared by the scripts: the latest ConsoleUpdate and the reason words from the node.
  const gp = { state: null, reasonWords: {} };
  window.gatepost = gp;

  // --- words -------------------------------------------------------------------------

  const { $, $$, fill, both, setContent, element } = window.gatepostText;

  const say = (key, vars) => both(T[key] || [key, key], vars);
  const word = (key) => T[key] || [key, key];

  function reasonPair(code) {
    const known = gp.reasonWords[code];
    if (known) return [known.zh, known.en];
    return T[code] || [code, code];
  }

  function agePair(seconds) {
    const s = Math.max(0, Math.round(seconds));
    if (s < 90) return [fill(T.s[0], { n: s }), fill(T.s[1], { n: s })];
    if (s < 5400) return [fill(T.min[0], { n: Math.round(s / 60) }), fill(T.min[1], { n: Math.round(s / 60) })];
    if (s < 172800) return [fill(T.h[0], { n: Math.round(s / 3600) }), fill(T.h[1], { n: Math.round(s / 3600) })];
    return [fill(T.d[0], { n: Math.round(s / 86400) }), fill(T.d[1], { n: Math.round(s / 86400) })];
  }

  const celsius = (t) => (t === null || t === undefined ? "" : `${t.toFixed(1)} °C`);
  const clockTime = (iso) => new Date(iso).toLocaleTimeString("zh-CN", { hour12: false });

  Object.assign(gp, {
    T, $, $$, fill, both, say, word, reasonPair, agePair, celsius, clockTime,
    setContent, element,
  });
})();
