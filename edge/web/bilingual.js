// Both languages side by side, and small DOM helpers, for every Gatepost page.
// Inlined before the page's own scripts, which take these from window.gatepostText.
"use strict";
window.gatepostText = (() => {
  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

  function fill(text, vars) {
    return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : ""));
  }

  // A fragment with both languages; `vars` values may themselves be [zh, en] pairs.
  function both(pair, vars = {}) {
    const fragment = document.createDocumentFragment();
    [["zh-CN", 0], ["en", 1]].forEach(([lang, i]) => {
      const values = {};
      for (const [name, value] of Object.entries(vars)) {
        values[name] = Array.isArray(value) ? value[i] : value;
      }
      const span = document.createElement("span");
      span.lang = lang;
      span.textContent = fill(pair[i], values);
      fragment.append(span);
    });
    return fragment;
  }

  return { $, $$, fill, both };
})();
