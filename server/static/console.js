// vpcore console: records or loads audio, converts it to 16 kHz mono 16-bit WAV in the
// browser and drives the service's API (checkUser, enroll, verify, getUsers, unregister).
// No build step and no third-party code: plain browser APIs only.
"use strict";

(() => {
  const RATE = 16000;          // the API's only sample rate
  const THRESHOLD = 0.7;       // the documented decision threshold of the confidence
  const NAME_RULE = /^[A-Za-z0-9_-]{4,16}$/;
  const LOG_LINES = 50;

  const $ = (id) => document.getElementById(id);

  // ------------------------------------------------------------------ small helpers ---

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else if (key === "style") node.style.cssText = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function show(target, ...children) {
    target.replaceChildren(...children.filter((c) => c !== null && c !== undefined));
  }

  class UserError extends Error {}

  // Runs an action of a button; any failure is shown in ``target`` (never unhandled).
  function guard(target, action) {
    return async (event) => {
      const button = event && event.currentTarget instanceof HTMLButtonElement
        ? event.currentTarget : null;
      if (button) button.disabled = true;
      try {
        await action(event);
      } catch (err) {
        show(target, el("p", { class: "bad" }, err instanceof UserError ? err.message
          : `unexpected problem: ${err && err.message ? err.message : err}`));
      } finally {
        if (button) button.disabled = false;
      }
    };
  }

  function userName() {
    const name = $("user-name").value.trim();
    if (!NAME_RULE.test(name)) {
      throw new UserError("enter a user name of 4 to 16 characters from A-Z a-z 0-9 _ - first");
    }
    return name;
  }

  function intInput(id, low, high, what) {
    const text = $(id).value.trim();
    const value = Number(text);
    if (!/^\d+$/.test(text) || value < low || value > high) {
      throw new UserError(`${what} must be a whole number from ${low} to ${high}`);
    }
    return value;
  }

  function groupList(id) {
    const text = $(id).value.trim();
    if (text === "" || text.toLowerCase() === "all") return [];
    const groups = text.split(/[\s,]+/).filter((t) => t !== "").map(Number);
    if (!groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 99)) {
      throw new UserError("groups must be numbers from 0 to 99, separated by commas");
    }
    return groups;
  }

  // ------------------------------------------------------------------------- the API ---

  function logRequest(method, path, http, answer, note) {
    const line = el("li", {},
      el("code", {}, `${method} ${path}`), " ",
      http === null ? "" : `HTTP ${http} `,
      answer ? el("span", { class: answer.status === "00000" ? "good" : "bad" },
        answer.status) : "",
      answer ? ` ${answer.message}` : "",
      note ? ` ${note}` : "",
      answer && answer.task_id ? el("span", { class: "task" }, ` task ${answer.task_id}`) : "");
    const log = $("log");
    log.prepend(line);
    while (log.children.length > LOG_LINES) log.lastElementChild.remove();
  }

  async function call(method, path, body) {
    const headers = {};
    const token = $("token").value.trim();
    if (token) headers.Authorization = `Bearer ${token}`;
    const init = { method, headers };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (err) {
      logRequest(method, path, null, null, "network error");
      throw new UserError(`the service did not answer (${err.message})`);
    }
    if (response.status === 401) {
      $("token-needed").hidden = false;
      $("token").focus();
      logRequest(method, path, 401, null, "API token needed");
      throw new UserError(token ? "the service refused this API token: check it"
        : "the service asks for an API token: enter it under Settings");
    }
    let answer;
    try {
      answer = await response.json();
    } catch (err) {
      logRequest(method, path, response.status, null, "not a JSON answer");
      throw new UserError(`HTTP ${response.status}: the answer is not JSON`);
    }
    $("token-needed").hidden = true;
    logRequest(method, path, response.status, answer);
    return answer;
  }

  // ------------------------------------------------------------------ audio to WAV ---

  // Float samples in [-1, 1] at 16 kHz -> bytes of a RIFF/WAVE file (mono, 16-bit PCM).
  function encodeWav(samples) {
    const bytes = new ArrayBuffer(44 + 2 * samples.length);
    const view = new DataView(bytes);
    const text = (offset, s) => { for (let i = 0; i < s.length; i++) view.setUint8(offset + i, s.charCodeAt(i)); };
    text(0, "RIFF");
    view.setUint32(4, 36 + 2 * samples.length, true);
    text(8, "WAVE");
    text(12, "fmt ");
    view.setUint32(16, 16, true);        // fmt chunk size
    view.setUint16(20, 1, true);         // PCM
    view.setUint16(22, 1, true);         // mono
    view.setUint32(24, RATE, true);
    view.setUint32(28, 2 * RATE, true);  // byte rate
    view.setUint16(32, 2, true);         // block align
    view.setUint16(34, 16, true);        // bits per sample
    text(36, "data");
    view.setUint32(40, 2 * samples.length, true);
    for (let i = 0; i < samples.length; i++) {
      const s = Math.max(-1, Math.min(1, samples[i]));
      view.setInt16(44 + 2 * i, Math.round(s < 0 ? s * 32768 : s * 32767), true);
    }
    return new Uint8Array(bytes);
  }

  function base64(bytes) {
    let binary = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
      binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(binary);
  }

  // Mono samples at any rate -> mono at 16 kHz, by the browser's own resampler.
  async function resample(samples, rate) {
    if (rate === RATE) return samples;
    const length = Math.max(1, Math.round(samples.length * RATE / rate));
    const offline = new OfflineAudioContext(1, length, RATE);
    const buffer = offline.createBuffer(1, samples.length, rate);
    buffer.copyToChannel(samples, 0);
    const source = offline.createBufferSource();
    source.buffer = buffer;
    source.connect(offline.destination);
    source.start();
    return (await offline.startRendering()).getChannelData(0);
  }

  // An uploaded audio file (WAV of any rate / channels, or what the browser decodes)
  // -> mono samples at 16 kHz.
  async function decodeFile(file) {
    const bytes = await file.arrayBuffer();
    let decoded;
    try {
      decoded = await new OfflineAudioContext(1, 1, RATE).decodeAudioData(bytes);
    } catch (err) {
      throw new UserError(`${file.name} cannot be decoded as audio`);
    }
    const mono = new Float32Array(decoded.length);
    for (let c = 0; c < decoded.numberOfChannels; c++) {
      const channel = decoded.getChannelData(c);
      for (let i = 0; i < mono.length; i++) mono[i] += channel[i] / decoded.numberOfChannels;
    }
    return resample(mono, decoded.sampleRate);  // decodeAudioData already resamples to RATE
  }

  // ------------------------------------------------------------- the microphone ---

  const recorder = {
    context: null,
    chunks: null,     // Float32Array blocks while recording, else null
    collected: 0,     // frames in chunks
    opening: null,

    available() {
      return Boolean(window.isSecureContext && navigator.mediaDevices &&
        navigator.mediaDevices.getUserMedia && window.AudioWorkletNode);
    },

    async open() {
      if (this.context) return;
      if (!this.opening) this.opening = this._open().finally(() => { this.opening = null; });
      await this.opening;
    },

    async _open() {
      if (!this.available()) {
        $("mic-unavailable").hidden = false;
        throw new UserError("the microphone is not available here (https:// or localhost " +
          "only): upload a WAV file instead");
      }
      let stream;
      try {
        stream = await navigator.mediaDevices.getUserMedia({
          audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false,
            autoGainControl: false },
        });
      } catch (err) {
        throw new UserError(`the microphone could not be opened (${err.name}): allow it ` +
          "in the browser, or upload a WAV file");
      }
      const context = new AudioContext();
      await context.audioWorklet.addModule("console/static/recorder-worklet.js");
      const node = new AudioWorkletNode(context, "vpcore-recorder");
      node.port.onmessage = (event) => this._block(event.data);
      const silent = context.createGain();
      silent.gain.value = 0;
      context.createMediaStreamSource(stream).connect(node);
      node.connect(silent).connect(context.destination);
      await context.resume();
      this.context = context;
    },

    _block(block) {
      if (this.chunks) { this.chunks.push(block); this.collected += block.length; }
      let peak = 0;
      let energy = 0;
      for (let i = 0; i < block.length; i++) {
        const a = Math.abs(block[i]);
        if (a > peak) peak = a;
        energy += block[i] * block[i];
      }
      meter(Math.sqrt(energy / block.length), peak);
    },

    // Record ``seconds`` after a countdown; returns mono samples at 16 kHz.
    async record(seconds, countdown) {
      await this.open();
      const status = $("countdown");
      for (let left = countdown; left > 0; left--) {
        status.textContent = `get ready: ${left}`;
        await sleep(1000);
      }
      this.chunks = [];
      this.collected = 0;
      const wanted = Math.round(seconds * this.context.sampleRate);  // exactly ``seconds``
      status.textContent = "speak now";
      status.classList.add("live");
      while (this.collected < wanted) {
        const left = (wanted - this.collected) / this.context.sampleRate;
        status.textContent = `speak now: ${left.toFixed(1)} s left`;
        await sleep(50);
      }
      const chunks = this.chunks;
      this.chunks = null;
      status.classList.remove("live");
      status.textContent = "recorded";
      const samples = new Float32Array(wanted);
      let offset = 0;
      for (const c of chunks) {
        if (offset >= wanted) break;
        const part = c.subarray(0, wanted - offset);
        samples.set(part, offset);
        offset += part.length;
      }
      return resample(samples, this.context.sampleRate);
    },
  };

  function sleep(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }

  function meter(rms, peak) {
    const db = 20 * Math.log10(Math.max(rms, 1e-6));
    const width = Math.max(0, Math.min(100, (db + 60) / 60 * 100));
    const bar = $("meter-bar");
    bar.style.width = `${width.toFixed(0)}%`;
    const clipped = peak >= 0.99;
    bar.classList.toggle("clip", clipped);
    $("meter-text").textContent = clipped ? "clipping: move away from the microphone"
      : `level ${db.toFixed(0)} dBFS`;
  }

  function recordSettings() {
    const seconds = Number($("record-seconds").value);
    const countdown = Number($("countdown-seconds").value);
    if (!(seconds >= 3 && seconds <= 20)) {
      throw new UserError("record for 3 to 20 seconds (the API's limits)");
    }
    if (!(countdown >= 0 && countdown <= 10)) throw new UserError("countdown: 0 to 10 seconds");
    return [seconds, countdown];
  }

  async function recordedAudio() {
    const [seconds, countdown] = recordSettings();
    return recorder.record(seconds, countdown);
  }

  // ------------------------------------------------------------------ rendering ---

  function percent(x) { return `${(100 * x).toFixed(x < 0.01 && x > 0 ? 2 : 1)} %`; }

  function qualityView(quality) {
    if (!quality) return null;
    const facts = el("p", { class: "quality" },
      `speech ${quality.speech_seconds.toFixed(1)} s of ${quality.duration.toFixed(1)} s`,
      ` \u00b7 SNR about ${quality.snr_db.toFixed(0)} dB`,
      ` \u00b7 clipping ${percent(quality.clipping_ratio)}`);
    const advice = quality.advice.map((a) =>
      el("li", { class: `advice ${a.code}`, "data-code": a.code }, a.message));
    return el("div", {}, facts,
      advice.length ? el("ul", { class: "advice-list" }, ...advice)
        : el("p", { class: "good" }, "good take"));
  }

  function answerView(answer) {
    const ok = answer.status === "00000";
    return el("p", { class: ok ? "good" : "bad" },
      ok ? "\u2714 " : "\u2716 ", answer.message,
      ok ? "" : el("span", { class: "status" }, ` (status ${answer.status})`));
  }

  function confidenceView(confidence, label) {
    const accepted = confidence >= THRESHOLD;
    return el("div", { class: "confidence" },
      el("div", { class: "confidence-label" }, label,
        el("strong", { class: "confidence-value" }, confidence.toFixed(4)),
        el("span", { class: accepted ? "good verdict" : "bad verdict" },
          accepted ? `accepted (\u2265 ${THRESHOLD})` : `not accepted (< ${THRESHOLD})`)),
      el("div", { class: "bar" },
        el("div", { class: accepted ? "fill accepted" : "fill", style: `width:${(100 * confidence).toFixed(1)}%` }),
        el("div", { class: "threshold", style: `left:${100 * THRESHOLD}%`, title: `threshold ${THRESHOLD}` })));
  }

  // --------------------------------------------------------------------- actions ---

  async function checkUser() {
    const target = $("check-result");
    const answer = await call("POST", "checkUser", { user_name: userName() });
    if (answer.status !== "00000") { show(target, answerView(answer)); return; }
    const d = answer.data;
    const state = d.enroll_num === 0 ? "free: not registered yet"
      : d.enroll_num < 3 ? `partly enrolled: ${d.enroll_num} of 3 takes (group ${d.group_id}, last take ${d.update_time}); enrol the next take`
        : `fully enrolled (group ${d.group_id}, last take ${d.update_time}): ready to verify`;
    show(target, el("p", { class: "good" }, `${d.user_name}: ${state}`));
    for (let k = 1; k <= 3; k++) {
      document.querySelector(`#take-${k}`).classList.toggle("done", k <= d.enroll_num);
    }
  }

  async function enroll(k, samplesPromise) {
    const card = $(`take-${k}`);
    const target = card.querySelector(".result");
    const name = userName();
    const group = intInput("group-id", 0, 99, "group");
    show(target, el("p", {}, "preparing the audio..."));
    const samples = await samplesPromise();
    show(target, el("p", {}, "sending..."));
    const answer = await call("POST", "enroll", {
      format: "wav", sample_rate: RATE, user_name: name, enroll_num: k, group_id: group,
      data: base64(encodeWav(samples)), quality: true,
    });
    card.classList.toggle("done", answer.status === "00000");
    card.classList.toggle("refused", answer.status !== "00000");
    show(target, answerView(answer), qualityView(answer.data && answer.data.quality));
    if (answer.status === "00000") {
      for (let j = k + 1; j <= 3; j++) {  // later takes were discarded by the service
        const later = $(`take-${j}`);
        later.classList.remove("done", "refused");
        show(later.querySelector(".result"));
      }
    }
  }

  function verifyMode() {
    return document.querySelector('input[name="verify-mode"]:checked').value;
  }

  async function verify(samplesPromise) {
    const target = $("verify-result");
    const body = { format: "wav", sample_rate: RATE, quality: true };
    if (verifyMode() === "one") {
      body.user_name = userName();
    } else {
      body.group_id = groupList("verify-groups");
      body.top_n = intInput("verify-top", 1, 100, "top");
    }
    show(target, el("p", {}, "preparing the audio..."));
    const samples = await samplesPromise();
    show(target, el("p", {}, "sending..."));
    body.data = base64(encodeWav(samples));
    const answer = await call("POST", "verify", body);
    if (answer.status !== "00000") {
      show(target, answerView(answer), qualityView(answer.data && answer.data.quality));
      return;
    }
    if (Array.isArray(answer.data)) {
      const rows = answer.data.map((m, i) => el("li", {},
        confidenceView(m.confidence, `${i + 1}. ${m.user_name} (group ${m.group_id}): `)));
      show(target, el("p", {}, "best matches, best first:"),
        el("ol", { class: "matches" }, ...rows), qualityView(answer.quality));
    } else {
      show(target, confidenceView(answer.data.confidence, `${answer.data.user_name}: `),
        qualityView(answer.data.quality));
    }
  }

  const paging = { offset: 0 };

  async function listUsers(offset) {
    const limit = intInput("list-limit", 1, 10000, "per page");
    const params = new URLSearchParams({ offset: String(offset), limit: String(limit) });
    const group = $("list-group").value.trim();
    if (group !== "" && group.toLowerCase() !== "all") {
      params.set("group_id", String(intInput("list-group", 0, 99, "group")));
    }
    const answer = await call("GET", `getUsers?${params}`);
    const body = document.querySelector("#users-table tbody");
    if (answer.status !== "00000") {
      show($("unregister-result"), answerView(answer));
      return;
    }
    paging.offset = offset;
    show(body, ...answer.data.map((u) => el("tr", {},
      el("td", {}, u.user_name), el("td", {}, `${u.enroll_num} of 3`),
      el("td", {}, u.group_id), el("td", {}, u.update_time),
      el("td", {}, unregisterButton(u.user_name)))));
    if (answer.data.length === 0) {
      show(body, el("tr", {}, el("td", { colspan: "5", class: "hint" }, "no users here")));
    }
    $("list-prev").disabled = offset === 0;
    $("list-next").disabled = answer.data.length < limit;
    $("list-page").textContent = answer.data.length
      ? `users ${offset + 1} to ${offset + answer.data.length}` : "";
  }

  // A destructive button asks once more before it acts.
  function confirming(button, label, action) {
    let armed = null;
    button.addEventListener("click", async (event) => {
      if (!armed) {
        button.textContent = "Click again to unregister";
        armed = setTimeout(() => { armed = null; button.textContent = label; }, 5000);
        return;
      }
      clearTimeout(armed);
      armed = null;
      button.textContent = label;
      await action(event);
    });
  }

  function unregisterButton(name) {
    const button = el("button", { type: "button", class: "danger small", "data-user": name },
      "Unregister");
    confirming(button, "Unregister", guard($("unregister-result"), () => unregister(name)));
    return button;
  }

  async function unregister(name) {
    const answer = await call("POST", "unregister", { user_name: name });
    show($("unregister-result"), answerView(answer),
      answer.status === "00000" ? el("p", {}, `${name} is removed; the name is free again`) : null);
    if (answer.status === "00000") {
      if ($("user-name").value.trim() === name) {
        for (let k = 1; k <= 3; k++) {
          const card = $(`take-${k}`);
          card.classList.remove("done", "refused");
          show(card.querySelector(".result"));
        }
      }
      await listUsers(paging.offset);
    }
  }

  async function health() {
    const target = $("service");
    try {
      const answer = await call("GET", "health");
      const ok = answer.status === "00000";
      target.dataset.state = ok ? "ok" : "error";
      target.textContent = ok
        ? `service ready (model ${answer.data.model.fingerprint}, ${answer.data.index.voiceprints} voiceprints)`
        : `service not ready: ${answer.message}`;
    } catch (err) {
      target.dataset.state = "error";
      target.textContent = `service: ${err.message}`;
    }
  }

  // ---------------------------------------------------------------------- wiring ---

  function fileOf(input) {
    const file = input.files && input.files[0];
    if (!file) throw new UserError("choose a WAV file");
    return () => decodeFile(file);
  }

  function wire() {
    $("settings-form").addEventListener("submit", (event) => event.preventDefault());
    $("check-user").addEventListener("click", guard($("check-result"), checkUser));
    for (const button of document.querySelectorAll("button.record")) {
      const k = Number(button.dataset.take);
      const target = $(`take-${k}`).querySelector(".result");
      button.addEventListener("click", guard(target, () => enroll(k, recordedAudio)));
    }
    for (const input of document.querySelectorAll('.take input[type="file"]')) {
      const k = Number(input.dataset.take);
      const target = $(`take-${k}`).querySelector(".result");
      input.addEventListener("change", guard(target, async () => {
        try { await enroll(k, fileOf(input)); } finally { input.value = ""; }
      }));
    }
    $("verify-record").addEventListener("click", guard($("verify-result"), () => verify(recordedAudio)));
    $("verify-file").addEventListener("change", guard($("verify-result"), async () => {
      try { await verify(fileOf($("verify-file"))); } finally { $("verify-file").value = ""; }
    }));
    const modeChanged = () => { $("many-options").hidden = verifyMode() !== "many"; };
    for (const radio of document.querySelectorAll('input[name="verify-mode"]')) {
      radio.addEventListener("change", modeChanged);
    }
    modeChanged();
    $("list-users").addEventListener("click", guard($("unregister-result"), () => listUsers(0)));
    $("list-prev").addEventListener("click", guard($("unregister-result"), () => {
      const limit = intInput("list-limit", 1, 10000, "per page");
      return listUsers(Math.max(0, paging.offset - limit));
    }));
    $("list-next").addEventListener("click", guard($("unregister-result"), () => {
      const limit = intInput("list-limit", 1, 10000, "per page");
      return listUsers(paging.offset + limit);
    }));
    confirming($("unregister"), "Unregister the user named above",
      guard($("unregister-result"), () => unregister(userName())));
    $("token").addEventListener("change", () => {
      try { sessionStorage.setItem("vpcore-token", $("token").value); } catch (err) { /* private mode */ }
      health();
    });
    try { $("token").value = sessionStorage.getItem("vpcore-token") || ""; } catch (err) { /* private mode */ }
    if (!recorder.available()) $("mic-unavailable").hidden = false;
    health();
  }

  wire();
})();
