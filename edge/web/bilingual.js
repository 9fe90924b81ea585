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

  function setContent(node, ...children) {
    node.replaceChildren(...children);
    return node;
  }

  // A new element: props set as properties where the element has them, else attributes.
  function element(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props)) {
      if (name === "dataset") Object.assign(node.dataset, value);
      else if (name in node) node[name] = value;
      else node.setAttribute(name, value);
    }
    node.append(...children);
    return node;
  }

  return { $, $$, fill, both, setContent, element };
})();
