// opioidsim explorer: draws what /api/pages describes; every figure comes from a real engine run.
// No page-specific code here: controls, panels and limits are declared in opioidsim/explorer/pages.py.
"use strict";

const COLORS = ["#2456a6", "#d1495b", "#2a9d8f", "#e9a23b", "#7b5ea7", "#5c8001", "#8c564b"];
const $ = (id) => document.getElementById(id);

const state = {
  pages: [], page: null, values: {}, file: null, job: null, poll: null, timer: null,
  result: null, logScale: {}, runs: 0, seq: 0, checkSeq: 0, waiting: false, requests: 0,
};

// #figure[data-pending="1"] while anything is on its way (a debounced change, a request, a run):
// tests and scripts wait for data-pending="0" to read a settled figure.
function markPending() {
  $("figure").dataset.pending = state.waiting || state.starting || state.loading || state.requests > 0 || state.job ? "1" : "0";
}

// ------------------------------------------------------------------------------------------
// server calls
async function api(method, path, body) {
  state.requests += 1;
  markPending();
  try { return await apiCall(method, path, body); } finally { state.requests -= 1; markPending(); }
}

async function apiCall(method, path, body) {
  const opts = { method, headers: {} };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, opts);
  } catch (e) {
    return { status: 0, ok: false, data: { error: { message: "cannot reach the explorer's server: is 'opioidsim explore' still running?" } } };
  }
  let data = null;
  try { data = await res.json(); } catch (e) { data = { error: { message: `server answered ${res.status}` } }; }
  return { status: res.status, ok: res.ok, data };
}

function requestBody() {
  const body = { page: state.page.id };
  if (state.file) {
    body.toml = state.file.toml;
    body.filename = state.file.filename;
    body.subjects = $("file-subjects").value;
    body.seed = $("file-seed").value;
  } else {
    body.params = { ...state.values };
  }
  return body;
}

// ------------------------------------------------------------------------------------------
// errors
function clearErrors() {
  $("error").hidden = true;
  $("error").textContent = "";
  document.querySelectorAll(".field-error").forEach((e) => { e.textContent = ""; });
  document.querySelectorAll("[aria-invalid]").forEach((e) => e.removeAttribute("aria-invalid"));
}

function showError(err) {
  const message = (err && err.message) || "something went wrong";
  $("error").textContent = message;
  $("error").hidden = false;
  const control = err && err.control;
  if (control) {
    const slot = document.querySelector(`.field-error[data-for="${CSS.escape(control)}"]`);
    if (slot) slot.textContent = message;
    const input = document.querySelector(`[data-control="${CSS.escape(control)}"]`);
    if (input) input.setAttribute("aria-invalid", "true");
  }
  $("figure").dataset.state = "error";
}

// ------------------------------------------------------------------------------------------
// pages and controls
function renderNav() {
  const nav = $("nav");
  nav.textContent = "";
  for (const p of state.pages) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = p.title;
    b.dataset.page = p.id;
    b.addEventListener("click", () => showPage(p.id));
    nav.appendChild(b);
  }
}

function showPage(id, values, file) {
  cancelJob();
  const page = state.pages.find((p) => p.id === id) || state.pages[0];
  state.page = page;
  state.values = { ...page.defaults, ...(values || {}) };
  state.file = file || null;
  state.result = null;
  writeHash();
  document.querySelectorAll("nav button").forEach((b) => {
    if (b.dataset.page === page.id) b.setAttribute("aria-current", "page"); else b.removeAttribute("aria-current");
  });
  $("intro").textContent = page.intro;
  renderControls();
  renderFileBox();
  clearErrors();
  $("panels").textContent = "";
  $("notes").textContent = "";
  $("summary").querySelector("tbody").textContent = "";
  $("summary").hidden = page.result_kind !== "series";  // a study page draws its own tables
  document.querySelector(".summary-title").hidden = page.result_kind !== "series";
  $("figure").dataset.state = "empty";
  $("run").textContent = page.auto_run ? "Run again" : "Run";
  if (page.auto_run || state.file) run();
}

function optionsFor(c) {
  if (c.options_by) return c.options_map[state.values[c.options_by]] || [];
  return c.options || [];
}

function renderControls() {
  const form = $("controls");
  form.textContent = "";
  form.hidden = !!state.file;
  if (state.file) return;
  const groups = new Map();
  for (const c of state.page.controls) {
    const key = (c.advanced ? "advanced:" : "") + c.group;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(c);
  }
  let advanced = null;
  for (const [key, controls] of groups) {
    const fs = document.createElement("fieldset");
    const lg = document.createElement("legend");
    lg.textContent = controls[0].group || "Settings";
    fs.appendChild(lg);
    for (const c of controls) fs.appendChild(renderControl(c));
    if (key.startsWith("advanced:")) {
      if (!advanced) {
        advanced = document.createElement("details");
        const s = document.createElement("summary");
        s.textContent = "More settings (seed, records, pain stimulus, name)";
        advanced.appendChild(s);
        form.appendChild(advanced);
      }
      advanced.appendChild(fs);
    } else {
      form.appendChild(fs);
    }
  }
  if (advanced) form.appendChild(advanced);  // advanced settings last
  updateEnabled();
}

function renderControl(c) {
  const row = document.createElement("div");
  row.className = "field";
  row.dataset.field = c.name;
  const id = `ctl-${c.name}`;
  const label = document.createElement("label");
  label.htmlFor = id;
  label.textContent = c.label;
  let input;
  if (c.kind === "select") {
    input = document.createElement("select");
    fillOptions(input, c);
  } else {
    input = document.createElement("input");
    input.type = c.kind === "checkbox" ? "checkbox" : "text";
    if (c.kind === "number") input.inputMode = "numeric";
  }
  input.id = id;
  input.name = c.name;
  input.dataset.control = c.name;
  if (c.kind === "checkbox") input.checked = !!state.values[c.name];
  else input.value = state.values[c.name] == null ? "" : String(state.values[c.name]);
  const onChange = () => {
    state.values[c.name] = c.kind === "checkbox" ? input.checked : input.value;
    for (const other of state.page.controls) {
      if (other.options_by === c.name) {
        const sel = $(`ctl-${other.name}`);
        fillOptions(sel, other);
        state.values[other.name] = sel.value;
      }
    }
    updateEnabled();
    changed(c.kind === "text" || c.kind === "number" ? 450 : 50);
  };
  input.addEventListener(c.kind === "select" || c.kind === "checkbox" ? "change" : "input", onChange);
  if (c.kind === "checkbox") {
    row.append(input, label);
    row.classList.add("check");
  } else {
    row.append(label, input);
  }
  if (c.help) {
    const h = document.createElement("span");
    h.className = "help";
    h.textContent = c.help;
    row.appendChild(h);
  }
  const err = document.createElement("div");
  err.className = "field-error";
  err.dataset.for = c.name;
  row.appendChild(err);
  return row;
}

function fillOptions(select, c) {
  const current = state.values[c.name];
  select.textContent = "";
  for (const o of optionsFor(c)) {
    const opt = document.createElement("option");
    opt.value = o;
    opt.textContent = o;
    select.appendChild(opt);
  }
  const opts = optionsFor(c);
  select.value = opts.includes(current) ? current : (opts[0] || "");
}

function updateEnabled() {
  for (const c of state.page.controls) {
    if (!c.enabled_by) continue;
    const on = !!state.values[c.enabled_by];
    const input = $(`ctl-${c.name}`);
    if (!input) continue;
    input.disabled = !on;
    input.closest(".field").classList.toggle("disabled", !on);
  }
}

function renderFileBox() {
  const box = $("file-box");
  box.textContent = "";
  box.hidden = !state.file;
  if (!state.file) return;
  const f = state.file;
  const p = document.createElement("p");
  p.textContent = f.what
    ? `Loaded "${f.name}" (${f.what}). Its design does not fit this page's controls, so it runs exactly as ` +
      "written; you can change the number of subjects and the seed."
    : `Loaded "${f.name}" (${f.duration}, ${f.doses} dose${f.doses === 1 ? "" : "s"}). ` +
      "Its doses do not fit this page's controls, so it runs exactly as written; you can change the cohort.";
  box.appendChild(p);
  for (const [name, label, value] of [["subjects", "Virtual subjects", f.subjects], ["seed", "Random seed", f.seed]]) {
    const row = document.createElement("div");
    row.className = "field";
    const l = document.createElement("label");
    l.htmlFor = `file-${name}`;
    l.textContent = label;
    const input = document.createElement("input");
    input.type = "text";
    input.id = `file-${name}`;
    input.dataset.control = name;
    input.value = String(value);
    input.addEventListener("input", () => changed(450));
    const err = document.createElement("div");
    err.className = "field-error";
    err.dataset.for = name;
    row.append(l, input, err);
    box.appendChild(row);
  }
  const back = document.createElement("button");
  back.type = "button";
  back.textContent = "Back to the page's controls";
  back.addEventListener("click", () => showPage(state.page.id));
  box.appendChild(back);
}

// The address keeps the page and the settings that differ from its defaults
// (#five-steps?amount=20%20mg&naloxone1=true): a link or a reload shows the same run.
function readHash() {
  const [id, query] = location.hash.replace(/^#/, "").split("?");
  const values = {};
  const page = state.pages.find((p) => p.id === id);
  if (page && query) {
    for (const [k, v] of new URLSearchParams(query)) {
      const c = page.controls.find((x) => x.name === k);
      if (c) values[k] = c.kind === "checkbox" ? v === "true" : v;
    }
  }
  return [id, values];
}

function writeHash() {
  const q = new URLSearchParams();
  if (!state.file) {
    for (const c of state.page.controls) {
      const v = state.values[c.name];
      if (v !== c.default && String(v) !== String(c.default)) q.set(c.name, String(v));
    }
  }
  const hash = `#${state.page.id}${q.toString() ? "?" + q.toString() : ""}`;
  if (location.hash !== hash) history.replaceState(null, "", hash);
}

function changed(delay) {
  writeHash();
  clearTimeout(state.timer);
  state.waiting = true;
  markPending();
  state.timer = setTimeout(() => {
    state.waiting = false;
    if (state.page.auto_run) run(); else check();
    markPending();
  }, delay);
}

// ------------------------------------------------------------------------------------------
// runs
async function check() {
  const seq = ++state.checkSeq;
  const r = await api("POST", "/api/check", requestBody());
  if (seq !== state.checkSeq) return null;
  clearErrors();
  if (!r.ok) { showError(r.data.error); return null; }
  if ($("figure").dataset.state === "error") $("figure").dataset.state = state.result ? "stale" : "empty";
  return r.data;
}

async function run() {
  cancelJob();
  const seq = ++state.seq;
  state.starting = true;
  let r;
  try {
    r = await api("POST", "/api/run", requestBody());
  } finally {
    if (seq === state.seq) state.starting = false;
  }
  if (seq !== state.seq) {  // a newer request went out meanwhile: drop this one
    if (r.ok) api("POST", `/api/jobs/${r.data.job}/cancel`, {});
    return;
  }
  clearErrors();
  if (!r.ok) { showError(r.data.error); markPending(); return; }
  state.job = r.data.job;
  $("figure").dataset.state = "running";
  showProgress(0, "queued");
  poll(r.data.job, seq);
}

function poll(id, seq) {
  state.poll = setTimeout(async () => {
    if (state.job !== id) return;
    const r = await api("GET", `/api/jobs/${id}`);
    if (state.job !== id || seq !== state.seq) return;
    if (!r.ok) { state.job = null; hideProgress(); showError(r.data.error); return; }
    const job = r.data;
    if (job.status === "done") {
      state.job = null;
      hideProgress();
      state.result = job.result;
      renderResult(job.result, job.elapsed_s);
    } else if (job.status === "failed") {
      state.job = null;
      hideProgress();
      showError(job.error);
    } else if (job.status === "cancelled") {
      state.job = null;
      hideProgress();
      $("figure").dataset.state = "cancelled";
    } else {
      const what = job.status === "queued" ? "waiting for the engine (it may still be compiling)"
        : job.progress > 0 ? `simulating… ${Math.round(job.progress * 100)} %`
        : "starting (the first run of a new shape compiles the engine: up to a minute)";
      showProgress(job.progress, what);
      poll(id, seq);
    }
  }, 120);
}

function cancelJob() {
  clearTimeout(state.poll);
  if (state.job) {
    api("POST", `/api/jobs/${state.job}/cancel`, {});
    state.job = null;
  }
  hideProgress();
}

function showProgress(fraction, text) {
  $("progress-box").hidden = false;
  $("progress").value = fraction;
  $("progress-text").textContent = text;
}

function hideProgress() { $("progress-box").hidden = true; markPending(); }

async function download() {
  const data = await check();
  if (!data) return;
  const blob = new Blob([data.toml], { type: "application/toml" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = `${data.name}.toml`;
  document.body.appendChild(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}

async function load(body) {
  cancelJob();
  const r = await api("POST", "/api/load", body);
  if (!r.ok) { clearErrors(); showError(r.data.error); return; }
  const d = r.data;
  if (d.params) showPage(d.page, d.params, null);
  else showPage(d.page, null, { toml: d.toml, name: d.name, filename: body.filename || d.name,
                                subjects: d.subjects, seed: d.seed, doses: d.doses, duration: d.duration,
                                what: d.what });
}

// ------------------------------------------------------------------------------------------
// figures (inline SVG)
function fmt(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  const a = Math.abs(v);
  if (a < 1e-6) return "0";
  if (a < 0.01 || a >= 1e5) return v.toExponential(2);
  return String(Number(v.toPrecision(3)));
}

function niceTicks(lo, hi, n) {
  if (!(hi > lo)) { hi = lo + 1; }
  const raw = (hi - lo) / n;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function svgEl(name, attrs) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

// The x axis of a time or session figure: a tick and its number at each value, the label at the right.
function drawXAxis(svg, ticks, X, m, W, H, label) {
  for (const v of ticks) {
    const x = X(v);
    svg.appendChild(svgEl("line", { class: "axis", x1: x, x2: x, y1: H - m.b, y2: H - m.b + 3 }));
    const tx = svgEl("text", { x, y: H - m.b + 12, "text-anchor": "middle" });
    tx.textContent = fmt(v);
    svg.appendChild(tx);
  }
  const xl = svgEl("text", { x: W - m.r, y: H - 1, "text-anchor": "end" });
  xl.textContent = label;
  svg.appendChild(xl);
}

function renderResult(res, elapsed) {
  state.runs += 1;
  const fig = $("figure");
  $("panels").textContent = "";
  const notes = $("notes");
  notes.textContent = "";
  const study = res.kind === "effects" || res.kind === "figures";
  $("summary").hidden = study;
  document.querySelector(".summary-title").hidden = study;
  if (study) {
    if (res.kind === "effects") renderEffects(res, elapsed); else renderFigures(res, elapsed);
    fig.dataset.runs = String(state.runs);
    fig.dataset.state = "ready";
    return;
  }
  for (const text of res.notes.concat([`${res.subjects} virtual subject${res.subjects === 1 ? "" : "s"}` +
      (res.subjects > 1 ? ": line = median, band = 10–90 %" : "") + (elapsed != null ? `; simulated in ${elapsed.toFixed(1)} s.` : ".")])) {
    const p = document.createElement("p");
    p.textContent = text;
    notes.appendChild(p);
  }
  const drawn = [];
  for (const panel of res.panels) {
    if (!panel.series.length) continue;
    const sec = document.createElement("section");
    sec.className = "panel";
    sec.dataset.panel = panel.id;
    const h = document.createElement("h3");
    h.textContent = panel.title;
    const spec = state.page.panels.find((p) => p.id === panel.id);
    if (spec && spec.help) {
      const s = document.createElement("span");
      s.className = "panel-help";
      s.textContent = spec.help;
      h.appendChild(s);
    }
    sec.appendChild(h);
    if (panel.log_option) {
      const l = document.createElement("label");
      l.className = "log";
      const cb = document.createElement("input");
      cb.type = "checkbox";
      cb.checked = state.logScale[panel.id] !== undefined ? state.logScale[panel.id] : panel.log_default;
      cb.addEventListener("change", () => { state.logScale[panel.id] = cb.checked; renderResult(state.result, elapsed); });
      l.append(cb, " log scale");
      sec.appendChild(l);
    }
    const legend = document.createElement("div");
    legend.className = "legend";
    panel.series.forEach((s, i) => {
      const item = document.createElement("span");
      const sw = document.createElement("span");
      sw.className = "sw";
      sw.style.background = COLORS[i % COLORS.length];
      const val = document.createElement("span");
      val.className = "val";
      item.append(sw, s.label, val);
      legend.appendChild(item);
    });
    sec.appendChild(legend);
    $("panels").appendChild(sec);
    const log = panel.log_option && (state.logScale[panel.id] !== undefined ? state.logScale[panel.id] : panel.log_default);
    drawn.push(drawPanel(sec, panel, res, log, legend));
  }
  linkCursor(drawn, res);
  renderSummary(res);
  fig.dataset.runs = String(state.runs);
  fig.dataset.state = "ready";
}

function drawPanel(sec, panel, res, log, legend) {
  const W = Math.max(320, sec.clientWidth - 14), H = 158;
  const m = { l: 48, r: 10, t: 8, b: 30 };
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img",
                             "aria-label": panel.title });
  const t = res.time;
  const t0 = t[0], t1 = t[t.length - 1] > t0 ? t[t.length - 1] : t0 + 1;
  let lo = Infinity, hi = -Infinity;
  for (const s of panel.series) for (const arr of [s.lo, s.hi, s.median]) for (const v of arr) {
    if (v === null || (log && v <= 0)) continue;
    lo = Math.min(lo, v); hi = Math.max(hi, v);
  }
  if (!Number.isFinite(lo)) { lo = 0; hi = 1; }
  if (log) {
    lo = Math.max(lo, hi / 1e4);
  } else {
    if (panel.y_zero) lo = Math.min(lo, 0);
    if (panel.y_range) { lo = Math.min(lo, panel.y_range[0]); hi = Math.max(hi, panel.y_range[1]); }
    for (const r of panel.refs) { lo = Math.min(lo, r.y); hi = Math.max(hi, r.y); }
    if (hi - lo < 1e-9) { hi = lo + 1; }
  }
  const tr = log ? (v) => Math.log10(v) : (v) => v;
  const ylo = tr(lo), yhi = tr(hi) + (log ? 0 : (hi - lo) * 0.04);
  const X = (v) => m.l + (v - t0) / (t1 - t0) * (W - m.l - m.r);
  const Y = (v) => {
    if (log) v = v > lo ? v : lo;
    return H - m.b - (tr(v) - ylo) / (yhi - ylo) * (H - m.t - m.b);
  };
  for (const ph of res.phases) {
    svg.appendChild(svgEl("rect", { class: "phase", x: X(ph.start), y: m.t, width: Math.max(1, X(ph.end) - X(ph.start)),
                                    height: H - m.t - m.b }));
    const label = svgEl("text", { x: X(ph.start) + 3, y: m.t + 10 });
    label.textContent = ph.label;
    svg.appendChild(label);
  }
  const yt = log ? niceTicks(ylo, yhi, 4).filter((v) => Number.isInteger(v)) : niceTicks(lo, hi, 4);
  for (const v of yt) {
    const y = log ? H - m.b - (v - ylo) / (yhi - ylo) * (H - m.t - m.b) : Y(v);
    if (y < m.t - 1 || y > H - m.b + 1) continue;
    svg.appendChild(svgEl("line", { class: "grid", x1: m.l, x2: W - m.r, y1: y, y2: y }));
    const tx = svgEl("text", { x: m.l - 4, y: y + 3, "text-anchor": "end" });
    tx.textContent = log ? fmt(Math.pow(10, v)) : fmt(v);
    svg.appendChild(tx);
  }
  const ylab = svgEl("text", { x: 10, y: m.t + (H - m.t - m.b) / 2, transform: `rotate(-90 10 ${m.t + (H - m.t - m.b) / 2})`,
                               "text-anchor": "middle" });
  ylab.textContent = panel.units;
  svg.appendChild(ylab);
  drawXAxis(svg, niceTicks(t0, t1, 8), X, m, W, H, `time (${res.time_unit})`);
  svg.appendChild(svgEl("line", { class: "axis", x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b }));
  svg.appendChild(svgEl("line", { class: "axis", x1: m.l, x2: m.l, y1: m.t, y2: H - m.b }));
  // every dose while there are few; the antagonist's always (a rescue, a precipitated withdrawal)
  const marked = res.doses.length <= 12 ? res.doses : res.doses.filter((d) => d.drug === "naloxone").slice(0, 12);
  {
    for (const d of marked) {
      const line = svgEl("line", { class: "dose", x1: X(d.t), x2: X(d.t), y1: m.t, y2: H - m.b });
      const title = svgEl("title");
      title.textContent = `${d.drug} ${d.amount} ${d.route} at ${fmt(d.t)} ${res.time_unit}`;
      line.appendChild(title);
      svg.appendChild(line);
    }
  }
  for (const r of panel.refs) {
    if (log) continue;
    svg.appendChild(svgEl("line", { class: "ref", x1: m.l, x2: W - m.r, y1: Y(r.y), y2: Y(r.y) }));
    const tx = svgEl("text", { x: W - m.r - 2, y: Y(r.y) - 2, "text-anchor": "end" });
    tx.textContent = r.label;
    svg.appendChild(tx);
  }
  panel.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    if (res.subjects > 1) {
      let top = "", bottom = "";
      for (let k = 0; k < t.length; k++) {
        if (s.lo[k] === null || s.hi[k] === null) continue;
        top += `${top ? "L" : "M"}${X(t[k]).toFixed(1)},${Y(s.hi[k]).toFixed(1)}`;
      }
      for (let k = t.length - 1; k >= 0; k--) {
        if (s.lo[k] === null || s.hi[k] === null) continue;
        bottom += `L${X(t[k]).toFixed(1)},${Y(s.lo[k]).toFixed(1)}`;
      }
      if (top) svg.appendChild(svgEl("path", { d: `${top}${bottom}Z`, fill: color, "fill-opacity": 0.16, stroke: "none",
                                               class: "band", "data-readout": s.readout }));
    }
    let d = "", pen = false;
    for (let k = 0; k < t.length; k++) {
      const v = s.median[k];
      if (v === null) { pen = false; continue; }
      d += `${pen ? "L" : "M"}${X(t[k]).toFixed(1)},${Y(v).toFixed(1)}`;
      pen = true;
    }
    if (t.length === 1 && d) d += `h2`;
    svg.appendChild(svgEl("path", { d, fill: "none", stroke: color, "stroke-width": 1.7, class: "median",
                                    "data-readout": s.readout, "data-label": s.label }));
  });
  const cursor = svgEl("line", { class: "cursor", x1: -10, x2: -10, y1: m.t, y2: H - m.b, visibility: "hidden" });
  svg.appendChild(cursor);
  sec.appendChild(svg);
  return { svg, cursor, X, W, m, panel, legend };
}

function linkCursor(drawn, res) {
  const t = res.time;
  const show = (k) => {
    for (const p of drawn) {
      if (k === null) { p.cursor.setAttribute("visibility", "hidden"); continue; }
      const x = p.X(t[k]);
      p.cursor.setAttribute("x1", x); p.cursor.setAttribute("x2", x);
      p.cursor.setAttribute("visibility", "visible");
      p.legend.querySelectorAll(".val").forEach((el, i) => {
        const s = p.panel.series[i];
        el.textContent = s ? `${fmt(s.median[k])} at ${fmt(t[k])} ${res.time_unit}` : "";
      });
    }
    if (k === null) for (const p of drawn) p.legend.querySelectorAll(".val").forEach((el) => { el.textContent = ""; });
  };
  for (const p of drawn) {
    p.svg.addEventListener("mousemove", (ev) => {
      const rect = p.svg.getBoundingClientRect();
      const x = (ev.clientX - rect.left) / rect.width * p.W;
      const frac = (x - p.m.l) / (p.W - p.m.l - p.m.r);
      if (frac < 0 || frac > 1) { show(null); return; }
      const target = t[0] + frac * (t[t.length - 1] - t[0]);
      let k = 0;
      while (k < t.length - 1 && t[k + 1] <= target) k++;
      show(k);
    });
    p.svg.addEventListener("mouseleave", () => show(null));
  }
}

// A study's result (kind "effects"): per measure Hedges' g with its 95 % CI drawn as a forest plot,
// then the group-difference table and the correlation with years of use, as the papers print them.
function renderEffects(res, elapsed) {
  const notes = $("notes");
  for (const text of res.notes.concat(elapsed != null ? [`Computed in ${elapsed.toFixed(1)} s.`] : [])) {
    const p = document.createElement("p");
    p.textContent = text;
    notes.appendChild(p);
  }
  const sec = document.createElement("section");
  sec.className = "panel";
  sec.dataset.panel = "effects";
  const h = document.createElement("h3");
  h.textContent = "Users against controls: Hedges' g with 95 % CI";
  sec.appendChild(h);
  $("panels").appendChild(sec);
  const rows = res.rows;
  const W = Math.max(320, sec.clientWidth - 14), rowH = 24, m = { l: 140, r: 16, t: 6, b: 30 };
  const H = m.t + m.b + rowH * rows.length;
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": h.textContent });
  svg.style.height = `${H}px`;
  let lo = -0.5, hi = 0.5;
  for (const r of rows) for (const v of [r.g_low, r.g_high]) if (v !== null) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  const X = (v) => m.l + (v - lo) / (hi - lo) * (W - m.l - m.r);
  for (const v of niceTicks(lo, hi, 6)) {
    svg.appendChild(svgEl("line", { class: v === 0 ? "axis" : "grid", x1: X(v), x2: X(v), y1: m.t, y2: H - m.b }));
    const tx = svgEl("text", { x: X(v), y: H - m.b + 12, "text-anchor": "middle" });
    tx.textContent = fmt(v);
    svg.appendChild(tx);
  }
  const xl = svgEl("text", { x: W - m.r, y: H - 2, "text-anchor": "end" });
  xl.textContent = "Hedges' g (users − controls; negative: less in users)";
  svg.appendChild(xl);
  rows.forEach((r, i) => {
    const y = m.t + rowH * (i + 0.5);
    const name = svgEl("text", { x: m.l - 8, y: y + 3, "text-anchor": "end" });
    name.textContent = r.label;
    svg.appendChild(name);
    if (r.g === null) return;
    if (r.g_low !== null && r.g_high !== null) {
      svg.appendChild(svgEl("line", { x1: X(r.g_low), x2: X(r.g_high), y1: y, y2: y, stroke: COLORS[0], "stroke-width": 1.6 }));
    }
    const dot = svgEl("circle", { cx: X(r.g), cy: y, r: 4, fill: COLORS[0], class: "effect", "data-measure": r.measure,
                                  "data-g": String(r.g) });
    const title = svgEl("title");
    title.textContent = `${r.label}: g ${fmt(r.g)} [${fmt(r.g_low)}, ${fmt(r.g_high)}], p ${fmt(r.p)}`;
    dot.appendChild(title);
    svg.appendChild(dot);
  });
  sec.appendChild(svg);
  const table = (head, body) => {
    const t = document.createElement("table");
    const tr = document.createElement("tr");
    for (const c of head) { const th = document.createElement("th"); th.textContent = c; tr.appendChild(th); }
    const thead = document.createElement("thead");
    thead.appendChild(tr);
    const tbody = document.createElement("tbody");
    for (const [key, cells] of body) {
      const row = document.createElement("tr");
      row.dataset.measure = key;
      for (const c of cells) { const td = document.createElement("td"); td.textContent = c; row.appendChild(td); }
      tbody.appendChild(row);
    }
    t.append(thead, tbody);
    return t;
  };
  const pm = (mean, sd) => `${fmt(mean)} ± ${fmt(sd)}`;
  const groups = document.createElement("h2");
  groups.className = "summary-title";
  groups.textContent = `Group differences (${res.users} users, ${res.controls} controls; % from a typical matched control)`;
  const diff = table(["region", "users", "controls", "g [95 % CI]", "Welch t (df)", "p"],
    rows.map((r) => [r.measure, [r.label, pm(r.mean_users, r.sd_users), pm(r.mean_controls, r.sd_controls),
      `${fmt(r.g)} [${fmt(r.g_low)}, ${fmt(r.g_high)}]`, `${fmt(r.t)} (${fmt(r.df)})`, fmt(r.p)]]));
  diff.id = "effects-table";
  $("panels").append(groups, diff);
  if (res.correlation.length) {
    const ch = document.createElement("h2");
    ch.className = "summary-title";
    ch.textContent = "Correlation with years of use (users; Pearson)";
    const corr = table(["region", "r", "p", "n"], res.correlation.map((c) => [c.measure, [c.label, fmt(c.r), fmt(c.p), String(c.n)]]));
    corr.id = "correlation-table";
    $("panels").append(ch, corr);
  }
}

// A study's own figures (kind "figures", see opioidsim/explorer/figures.py): lines (each series
// with its own x, an optional band, drawn as steps for a survival curve), grouped bars with
// whiskers, and tables.
function renderFigures(res, elapsed) {
  const notes = $("notes");
  for (const text of res.notes.concat(elapsed != null ? [`Computed in ${elapsed.toFixed(1)} s.`] : [])) {
    const p = document.createElement("p");
    p.textContent = text;
    notes.appendChild(p);
  }
  for (const f of res.figures) {
    const sec = document.createElement("section");
    sec.className = "panel";
    sec.dataset.panel = f.id;
    sec.dataset.type = f.type;
    const h = document.createElement("h3");
    h.textContent = f.title;
    if (f.help) {
      const s = document.createElement("span");
      s.className = "panel-help";
      s.textContent = f.help;
      h.appendChild(s);
    }
    sec.appendChild(h);
    $("panels").appendChild(sec);
    if (f.type === "table") { sec.appendChild(figureTable(f)); continue; }
    const legend = document.createElement("div");
    legend.className = "legend";
    f.series.forEach((s, i) => {
      const item = document.createElement("span");
      const sw = document.createElement("span");
      sw.className = "sw";
      sw.style.background = COLORS[(s.color ?? i) % COLORS.length];
      if (s.dashed) sw.style.opacity = 0.5;
      item.append(sw, s.label);
      legend.appendChild(item);
    });
    sec.appendChild(legend);
    sec.appendChild(f.type === "bars" ? drawBars(sec, f) : drawLines(sec, f));
  }
}

function figureTable(f) {
  const t = document.createElement("table");
  t.id = `table-${f.id}`;
  const thead = document.createElement("thead");
  const hr = document.createElement("tr");
  for (const c of f.columns) { const th = document.createElement("th"); th.textContent = c; hr.appendChild(th); }
  thead.appendChild(hr);
  const tbody = document.createElement("tbody");
  f.rows.forEach((row, i) => {
    const tr = document.createElement("tr");
    tr.dataset.key = f.keys[i];
    for (const c of row) {
      const td = document.createElement("td");
      td.textContent = typeof c === "number" ? fmt(c) : (c === null ? "–" : String(c));
      tr.appendChild(td);
    }
    tbody.appendChild(tr);
  });
  t.append(thead, tbody);
  return t;
}

function axes(svg, W, H, m, X, Y, lo, hi, x0, x1, f, xTicks) {
  for (const v of niceTicks(lo, hi, 4)) {
    const y = Y(v);
    if (y < m.t - 1 || y > H - m.b + 1) continue;
    svg.appendChild(svgEl("line", { class: "grid", x1: m.l, x2: W - m.r, y1: y, y2: y }));
    const tx = svgEl("text", { x: m.l - 4, y: y + 3, "text-anchor": "end" });
    tx.textContent = fmt(v);
    svg.appendChild(tx);
  }
  const ylab = svgEl("text", { x: 10, y: m.t + (H - m.t - m.b) / 2, transform: `rotate(-90 10 ${m.t + (H - m.t - m.b) / 2})`,
                               "text-anchor": "middle" });
  ylab.textContent = f.y_label;
  svg.appendChild(ylab);
  if (xTicks) {
    drawXAxis(svg, niceTicks(x0, x1, 8).filter((v) => !f.x_whole || Number.isInteger(v)), X, m, W, H, f.x_label);
  }
  svg.appendChild(svgEl("line", { class: "axis", x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b }));
  svg.appendChild(svgEl("line", { class: "axis", x1: m.l, x2: m.l, y1: m.t, y2: H - m.b }));
}

function drawLines(sec, f) {
  const W = Math.max(320, sec.clientWidth - 14), H = 180, m = { l: 48, r: 10, t: 8, b: 30 };
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img", "aria-label": f.title });
  let x0 = Infinity, x1 = -Infinity, lo = Infinity, hi = -Infinity;
  for (const s of f.series) {
    s.x.forEach((x, k) => {
      if (x === null) return;
      x0 = Math.min(x0, x); x1 = Math.max(x1, x);
      for (const v of [s.median[k], s.lo ? s.lo[k] : null, s.hi ? s.hi[k] : null]) {
        if (v !== null) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
      }
    });
  }
  if (!Number.isFinite(lo)) { lo = 0; hi = 1; }
  if (!Number.isFinite(x0)) { x0 = 0; x1 = 1; }
  if (x1 <= x0) x1 = x0 + 1;
  lo = Math.min(lo, 0);
  if (f.y_range) { lo = Math.min(lo, f.y_range[0]); hi = Math.max(hi, f.y_range[1]); }
  if (hi - lo < 1e-9) hi = lo + 1;
  const top = hi + (hi - lo) * 0.04;
  const X = (v) => m.l + (v - x0) / (x1 - x0) * (W - m.l - m.r);
  const Y = (v) => H - m.b - (v - lo) / (top - lo) * (H - m.t - m.b);
  axes(svg, W, H, m, X, Y, lo, hi, x0, x1, f, true);
  f.series.forEach((s, i) => {
    const color = COLORS[(s.color ?? i) % COLORS.length];
    if (s.lo && s.hi) {
      let up = "", down = "";
      for (let k = 0; k < s.x.length; k++) if (s.lo[k] !== null && s.hi[k] !== null) up += `${up ? "L" : "M"}${X(s.x[k]).toFixed(1)},${Y(s.hi[k]).toFixed(1)}`;
      for (let k = s.x.length - 1; k >= 0; k--) if (s.lo[k] !== null && s.hi[k] !== null) down += `L${X(s.x[k]).toFixed(1)},${Y(s.lo[k]).toFixed(1)}`;
      if (up) svg.appendChild(svgEl("path", { d: `${up}${down}Z`, fill: color, "fill-opacity": 0.16, stroke: "none", class: "band",
                                             "data-series": s.key }));
    }
    let d = "", pen = false, last = null;
    for (let k = 0; k < s.x.length; k++) {
      const v = s.median[k];
      if (v === null) { pen = false; continue; }
      if (f.step && pen) d += `L${X(s.x[k]).toFixed(1)},${Y(last).toFixed(1)}`;
      d += `${pen ? "L" : "M"}${X(s.x[k]).toFixed(1)},${Y(v).toFixed(1)}`;
      pen = true; last = v;
    }
    const path = svgEl("path", { d, fill: "none", stroke: color, "stroke-width": 1.7, class: "median",
                                 "data-series": s.key, "data-label": s.label, "data-values": JSON.stringify(s.median) });
    if (s.dashed) path.setAttribute("stroke-dasharray", "5 3");
    svg.appendChild(path);
    if (!f.step && s.x.length <= 40) {
      s.x.forEach((x, k) => {
        if (s.median[k] === null) return;
        svg.appendChild(svgEl("circle", { cx: X(x), cy: Y(s.median[k]), r: 2.5, fill: color }));
      });
    }
  });
  return svg;
}

function drawBars(sec, f) {
  const W = Math.max(320, sec.clientWidth - 14), H = 190, m = { l: 48, r: 10, t: 8, b: 34 };
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img", "aria-label": f.title });
  let lo = 0, hi = -Infinity;
  for (const s of f.series) for (const arr of [s.values, s.lo || [], s.hi || []]) for (const v of arr) {
    if (v !== null) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  }
  if (!Number.isFinite(hi) || hi - lo < 1e-9) hi = lo + 1;
  const top = hi + (hi - lo) * 0.06;
  const Y = (v) => H - m.b - (v - lo) / (top - lo) * (H - m.t - m.b);
  axes(svg, W, H, m, null, Y, lo, hi, 0, 1, f, false);
  const groupW = (W - m.l - m.r) / Math.max(1, f.categories.length);
  const barW = Math.min(48, groupW * 0.8 / Math.max(1, f.series.length));
  f.categories.forEach((cat, c) => {
    const gx = m.l + groupW * c + (groupW - barW * f.series.length) / 2;
    const label = svgEl("text", { x: m.l + groupW * (c + 0.5), y: H - m.b + 13, "text-anchor": "middle" });
    label.textContent = cat;
    svg.appendChild(label);
    f.series.forEach((s, i) => {
      const v = s.values[c];
      if (v === null) return;
      const x = gx + barW * i;
      const rect = svgEl("rect", { x: x + 1, width: barW - 2, y: Math.min(Y(v), Y(0)), height: Math.abs(Y(0) - Y(v)),
                                   fill: COLORS[i % COLORS.length], class: "bar", "data-series": s.label,
                                   "data-category": cat, "data-value": String(v) });
      const title = svgEl("title");
      title.textContent = `${s.label}, ${cat}: ${fmt(v)}` + (s.lo ? ` (IQR ${fmt(s.lo[c])}–${fmt(s.hi[c])})` : "");
      rect.appendChild(title);
      svg.appendChild(rect);
      if (s.lo && s.hi && s.lo[c] !== null && s.hi[c] !== null) {
        const cx = x + barW / 2;
        svg.appendChild(svgEl("line", { class: "axis", x1: cx, x2: cx, y1: Y(s.lo[c]), y2: Y(s.hi[c]) }));
      }
    });
  });
  return svg;
}

function renderSummary(res) {
  const body = $("summary").querySelector("tbody");
  body.textContent = "";
  for (const r of res.summary) {
    const tr = document.createElement("tr");
    tr.dataset.readout = r.readout;
    tr.dataset.extreme = r.extreme === null ? "" : String(r.extreme);
    const cells = [r.label, r.units === "1" ? "" : r.units, fmt(r.baseline),
                   `${fmt(r.extreme)}${r.kind === "min" ? " (lowest)" : ""}`,
                   res.subjects > 1 ? `${fmt(r.extreme_p10)} – ${fmt(r.extreme_p90)}` : "",
                   `${fmt(r.at)} ${res.time_unit}`, fmt(r.final)];
    for (const c of cells) {
      const td = document.createElement("td");
      td.textContent = c;
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
}

// ------------------------------------------------------------------------------------------
async function init() {
  const r = await api("GET", "/api/pages");
  if (!r.ok) { showError(r.data.error); return; }
  state.pages = r.data.pages;
  $("notice").textContent = "";
  const strong = document.createElement("strong");
  strong.textContent = "Research and teaching only. ";
  $("notice").append(strong, r.data.notice.replace(/^Research and teaching only\.\s*/, ""));
  $("footer").textContent = `opioidsim ${r.data.version} · every figure is a fresh run of the model's engine ` +
    `(limits: ${r.data.limits.max_subjects} subjects, ${r.data.limits.max_duration_days} days, ` +
    `${r.data.limits.max_subject_doses} subject-doses a run; bigger runs: opioidsim run).`;
  const sel = $("builtin");
  for (const [name, desc] of Object.entries(r.data.builtins)) {
    const o = document.createElement("option");
    o.value = name;
    o.textContent = name;
    o.title = desc;
    sel.appendChild(o);
  }
  renderNav();
  $("run").addEventListener("click", () => run());
  $("cancel").addEventListener("click", () => { cancelJob(); $("figure").dataset.state = "cancelled"; });
  $("download").addEventListener("click", () => download());
  $("upload").addEventListener("change", async (ev) => {
    const f = ev.target.files[0];
    if (!f) return;
    state.loading = true;  // pending from the moment a file is chosen
    markPending();
    try {
      const text = await f.text();
      ev.target.value = "";
      await load({ toml: text, filename: f.name });
    } finally {
      state.loading = false;
      markPending();
    }
  });
  sel.addEventListener("change", () => { if (sel.value) load({ builtin: sel.value }); sel.value = ""; });
  let resize = null;
  window.addEventListener("resize", () => {
    clearTimeout(resize);
    resize = setTimeout(() => { if (state.result && $("figure").dataset.state === "ready") renderResult(state.result); }, 200);
  });
  const [wanted, values] = readHash();
  showPage(state.pages.some((p) => p.id === wanted) ? wanted : state.pages[0].id, values);
}

document.addEventListener("DOMContentLoaded", init);
