// Words of the console page, from the catalogue the node put into the page, and small
// DOM helpers. Loaded first; the other scripts take what they need from window.gatepost.
"use strict";
(() => {
  const { $, $$, fill, both, setContent, element } = window.gatepostText;
  // key -> [简体中文, English] (words.json); reason code -> {zh, en}; the hold rules.
  const catalogue = JSON.parse(document.getElementById("catalogue").textContent);
  const T = catalogue.words;

  // Shared by the scripts: the latest ConsoleUpdate and the catalogue.
  const gp = { state: null, reasonWords: catalogue.reasons, holdRules: catalogue.holds };
  window.gatepost = gp;

  // A key the catalogue lacks shows as itself, and is marked so tests find it.
  const missing = new Set();
  function word(key) {
    if (T[key]) return T[key];
    if (!missing.has(key)) { missing.add(key); console.warn(`no words for "${key}"`); }
    document.documentElement.dataset.missingWords = [...missing].join(" ");
    return [key, key];
  }
  const say = (key, vars) => both(word(key), vars);

  // Every element marked data-words="key" under `root` gets the key's words.
  function fillWords(root = document) {
    const marked = root.matches && root.matches("[data-words]") ? [root] : [];
    for (const node of [...marked, ...$$("[data-words]", root)]) setContent(node, say(node.dataset.words));
  }

  function reasonPair(code) {
    const known = gp.reasonWords[code];
    if (known) return [known.zh, known.en];
    return word(code);
  }

  function agePair(seconds) {
    const s = Math.max(0, Math.round(seconds));
    const [unit, n] = s < 90 ? ["age.s", s] : s < 5400 ? ["age.min", Math.round(s / 60)]
      : s < 172800 ? ["age.h", Math.round(s / 3600)] : ["age.d", Math.round(s / 86400)];
    const pair = word(unit);
    return [fill(pair[0], { n }), fill(pair[1], { n })];
  }

  const celsius = (t) => (t === null || t === undefined ? "" : `${t.toFixed(1)} °C`);

  // Times are the site's (NodeView.zone), whatever zone the tablet itself is set to.
  function clockTime(iso) {
    const zone = gp.state ? gp.state.node.zone : undefined;
    const options = { hour12: false, hour: "2-digit", minute: "2-digit", second: "2-digit" };
    try {
      return new Date(iso).toLocaleTimeString("zh-CN", { ...options, timeZone: zone });
    } catch (error) {  // a zone this browser does not know: say so rather than mislead
      return `${new Date(iso).toISOString().slice(11, 19)} UTC`;
    }
  }

  Object.assign(gp, {
    T, $, $$, fill, both, say, word, fillWords, reasonPair, agePair, celsius, clockTime,
    setContent, element,
  });
})();
