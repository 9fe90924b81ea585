// /pair: the gate's own screen makes codes; a tablet types one and gets its device cookie.
"use strict";
(() => {
  const { $, both, setContent } = window.gatepostText;

  const SAID = {
    wrong: ["配对码错误或已过期，请在门岗屏幕上重新生成。", "Wrong or expired code: make a new one on the gate's screen."],
    tooMany: ["输入错误次数过多，请{s}秒后再试。", "Too many wrong codes: try again in {s} s."],
    full: ["已配对的设备太多，请技术人员先解除一台。", "Too many devices are paired: a technician must unpair one first."],
    failed: ["无法连接门岗，请稍后再试。", "Cannot reach the gate: try again."],
    paired: ["配对成功，正在打开控制台…", "Paired: opening the console…"],
    expires: ["{s}秒内有效", "valid for {s} s"],
  };

  function say(pair, vars = {}, kind = "bad") {
    const message = $("#message");
    message.dataset.kind = kind;
    message.hidden = false;
    setContent(message, both(pair, vars));
  }

  async function post(url, body) {
    return fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
  }

  async function makeCode() {
    const response = await post("/api/pairing/codes", {});
    if (!response.ok) return say(SAID.failed);
    const { code, expires_in_s: seconds } = await response.json();
    const output = $("#code");
    output.hidden = false;
    output.textContent = code;
    say(SAID.expires, { s: seconds }, "ok");
  }

  async function pair(event) {
    event.preventDefault();
    const form = event.target;
    const response = await post("/api/pairing", {
      code: form.elements.code.value.trim(),
      label: form.elements.label.value.trim(),
    });
    if (response.ok) {
      say(SAID.paired, {}, "ok");
      window.location.assign("/");
    } else if (response.status === 429) {
      say(SAID.tooMany, { s: response.headers.get("Retry-After") || "60" });
    } else if (response.status === 409) {
      say(SAID.full);
    } else {
      say(response.status === 401 || response.status === 422 ? SAID.wrong : SAID.failed);
    }
  }

  async function start() {
    let status = { this_machine: false, paired: false };
    try {
      status = await (await fetch("/api/pairing", { credentials: "same-origin" })).json();
    } catch {
      say(SAID.failed);
    }
    $("#paired").hidden = !status.paired;
    $("#make").hidden = !status.this_machine;
    $("#enter").hidden = status.this_machine || status.paired;
    $("#make-code").addEventListener("click", () => makeCode().catch(() => say(SAID.failed)));
    $("#enter").addEventListener("submit", (event) => pair(event).catch(() => say(SAID.failed)));
    document.body.dataset.ready = "true";
  }

  start();
})();
