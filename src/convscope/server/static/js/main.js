// @ts-check
// The explorer page: wires the model picker, the input choices, the overview, the
// detail views, the playground and the summary together.

import { getJSON, postJSON, q } from "./api.js";
import { Overview } from "./overview.js";
import { renderDetail } from "./detail.js";
import { Playground } from "./playground.js";
import { renderSamples, upload, uploadUrl, drawingPad } from "./inputs.js";
import { renderSummary } from "./summary.js";
import { mountWhy } from "./why.js";
import { mountLookFor } from "./lookfor.js";
import { mountSearch } from "./search.js";
import { mountLearn } from "./learn.js";
import { el, fill, html, byId as $ } from "./dom.js";
import { page } from "./page.js";
import { closeOnEscape } from "./keyboard.js";
import { setLanguage, chooseLanguage, onLanguage, language, number, t, say, LANGUAGES } from "./i18n.js";

// the catalogues load while the model list does (not before it); nothing is written before both
const languageReady = setLanguage().catch(() => language());

// the model and image picked live in the page's store (tabs.js, the dataset view and the
// panels follow them there); the rest is this module's own
const state = {
  get model() { return page.get("model"); },
  get image() { return page.get("image"); },
  info: null, trace: null, mode: "unit", overview: null, selected: null, playground: null,
};
const api = (path, params) => `/api/models/${encodeURIComponent(state.model)}${path}${params ? "?" + q(params) : ""}`;

/** The message shown now, when the page wrote it (a function of the language, redrawn after a switch). */
let shownMessage = null;

/**
 * Show a message above the overview (null hides it): the server's error text as it came, or
 * a function that writes the page's own sentence in the current language.
 * @param {string | (() => string) | null} text
 */
function message(text, kind = "error") {
  const m = $("message");
  shownMessage = typeof text === "function" ? { text, kind } : null;
  if (!text) { m.hidden = true; m.textContent = ""; return; }
  m.hidden = false;
  m.className = `message ${kind}`;
  m.textContent = typeof text === "function" ? text() : text;
}

function tooltip(at) {
  const tip = $("tooltip");
  if (!at) { tip.hidden = true; return; }
  tip.hidden = false;
  fill(tip, at.text);
  tip.style.left = `${at.x + 14}px`;
  tip.style.top = `${at.y + 14}px`;
}

async function loadModels() {
  const params = new URLSearchParams(location.search);
  // when the address names a model and an image, their info and trace are fetched at once
  const wanted = params.get("model");
  const earlyInfo = wanted ? getJSON(`/api/models/${encodeURIComponent(wanted)}`).catch(() => null) : null;
  const earlyTrace = wanted && params.get("image")
    ? getJSON(`/api/models/${encodeURIComponent(wanted)}/trace?` + q({ image: params.get("image") })).catch(() => null) : null;
  const [{ models, default: first }] = await Promise.all([getJSON("/api/models"), languageReady]);
  state.prefetched = { model: wanted, info: earlyInfo, trace: earlyTrace, image: params.get("image") };
  state.models = models;
  const sel = /** @type {HTMLSelectElement} */ ($("model-select"));
  listModels();
  const want = new URLSearchParams(location.search).get("model");
  sel.value = models.some((m) => m.name === want) ? want : first;
  sel.onchange = () => selectModel(sel.value);
  await selectModel(sel.value, new URLSearchParams(location.search).get("image"));
  failedModels();
}

/** The picker's options; a model that failed to load stays listed, with its reason, but cannot be picked. */
function listModels() {
  const sel = /** @type {HTMLSelectElement} */ ($("model-select"));
  const value = sel.value;
  sel.replaceChildren();
  state.models.forEach((m) => {
    const option = new Option(m.error ? t("page.failed_option", { name: m.name }) : m.name, m.name);
    if (m.error) Object.assign(option, { disabled: true, title: m.error });
    sel.appendChild(option);
  });
  if (value) sel.value = value;
}

/** Say which models failed to load (their reasons are the server's error text, as logged). */
function failedModels() {
  const failed = state.models.filter((m) => m.error);
  if (failed.length) message(() => failed.map((m) => t("page.model_failed", { name: m.name, error: m.error })).join(" · "), "warn");
}

async function selectModel(name, image = null) {
  page.set("model", name);
  page.set("overview", "loading");
  message(null);
  // the model's info and (when the address names an image) its trace, asked for together
  const pre = state.prefetched && state.prefetched.model === name ? state.prefetched : null;
  state.prefetched = null;
  const early = image ? ((pre && pre.image === image && pre.trace) || getJSON(api("/trace", { image })).catch(() => null)) : null;
  state.info = (pre && (await pre.info)) || await getJSON(api(""));
  state.early = early && { image, trace: early };
  const info = state.info;
  modelNote();
  $("draw-box").hidden = info.channels !== 1;
  state.folded = false;
  foldLabel();
  $("summary").hidden = true;
  $("playground").hidden = true;
  closeDetail();
  // an uploaded or drawn image stays when the model changes; a sample is per model
  const keep = !image && state.image && state.image.startsWith("upload-") ? state.image : null;
  await selectImage(image || keep || (info.samples[0] && info.samples[0].id));
}

/** The model's input, classes and parameters beside the picker. */
function modelNote() {
  const info = state.info;
  fill($("model-note"), t("page.model_note", {
    shape: info.input_shape.join("×"), classes: info.classes ? number(info.classes.length) : "?", parameters: number(info.parameters),
  }), info.untrained && [" · ", el("span", "warn", t("page.untrained"))]);
}

/** The fold button says what a press does next. */
function foldLabel() {
  $("btn-fold").textContent = t(state.folded ? "page.unfold_blocks" : "page.fold_blocks");
}

/** How the trace was taken, in the footer. */
function traceNote() {
  $("trace-note").textContent = state.trace.via === "hooks" ? t("page.traced_hooks") : t("page.traced_fx", { n: number(state.trace.layers.length) });
}

async function selectImage(id) {
  page.set("image", id);
  renderSamples($("samples"), state.info, id, selectImage);
  const url = new URL(location.href);
  url.searchParams.set("model", state.model);
  url.searchParams.set("image", id);
  history.replaceState(null, "", url);
  await refresh();
}

async function refresh() {
  page.set("overview", "loading");
  const t0 = performance.now();
  const early = state.early && state.early.image === state.image ? await state.early.trace : null;
  state.early = null;
  state.trace = early || await getJSON(api("/trace", { image: state.image }));
  /** @type {HTMLImageElement} */ ($("input-preview")).src = api(`/images/${state.image}.png`);
  showPrediction();
  traceNote();
  if (state.overview) state.overview.destroy();
  state.overview = new Overview($("overview"), {
    model: state.model, image: state.image, trace: state.trace, mode: state.mode,
    inputChannels: state.info.channels, onSelect: select, onHover: tooltip,
  });
  state.overview.render();
  $("btn-fold").hidden = !state.trace.layers.some((l) => l.group);
  if (state.folded) state.overview.foldAll(true);
  await state.overview.drawVisible();
  page.set("overview", "ready");
  timings({ overviewMs: performance.now() - t0 });
  showThumbnails();
  if (state.selected) await select(...state.selected);
  if (!$("summary").hidden) await showSummary();
  if (!$("playground").hidden && state.playground) {
    Object.assign(state.playground.ctx, { image: state.image, trace: state.trace });
    await state.playground.update();
  }
}

/**
 * Record how long the last overview / detail took, for the browser tests' speed checks.
 * @param {Record<string, number>} ms
 */
function timings(ms) {
  const w = /** @type {any} */ (window);
  w.__convscope = { ...(w.__convscope || {}), ...ms };
}

function showThumbnails() {
  /** @type {NodeListOf<HTMLImageElement>} */ (document.querySelectorAll(".sample img[data-src]")).forEach((img) => { img.src = img.dataset.src; img.removeAttribute("data-src"); });
}

function showPrediction() {
  const p = state.trace.prediction;
  if (!p.top.length) {
    fill($("prediction"), el("span", "pred-label", t("page.no_scores")));
    page.set("prediction", "");
    return;
  }
  fill($("prediction"), el("span", "pred-label", t("page.prediction")), p.top.slice(0, 3).map((c, i) =>
    html`<span class="pred ${i === 0 ? "best" : ""}" data-index="${c.index}">${c.name} <b>${(100 * c.prob).toFixed(1)}%</b></span>`),
    (state.trace.warnings || []).map(inputWarning));
  page.set("prediction", p.top[0].name);
  page.set("warnings", (state.trace.warnings || []).map((w) => w.kind).join(" "));
}

/**
 * A mismatch between the image and the model (convscope.models.checks) beside the prediction,
 * with its one-click fix: upload the negative, or switch to a model made for photos.
 * @param {{kind: string, message: string, message_i18n?: {key: string, params: Record<string, unknown>, text: string}, fix: string}} w
 */
function inputWarning(w) {
  const box = el("span", "pred-warning warn", `⚠ ${say(w.message_i18n || w.message)}`);
  box.dataset.kind = w.kind;
  const b = el("button", "link", t(w.fix === "invert" ? "page.fix_invert" : "page.fix_photo_model"));
  b.dataset.fix = w.fix;
  b.onclick = () => guarded(async () => {
    if (w.fix === "invert") return selectImage((await postJSON(api(`/images/${state.image}/inverted`), {})).image);
    const sel = /** @type {HTMLSelectElement} */ ($("model-select"));
    for (const o of [...sel.options]) {
      const info = await getJSON(`/api/models/${encodeURIComponent(o.value)}`).catch(() => null);
      if (info && info.channels === 3) { sel.value = o.value; return selectModel(o.value); }
    }
    message(() => t("page.no_photo_model"));
  });
  box.appendChild(b);
  return box;
}

async function select(layer, channel, y, x, extra = {}) {
  state.selected = [layer, channel, y, x];
  const root = $("detail");
  page.set("detail", "loading");
  const t0 = performance.now();
  const path = layer === "__softmax__" ? "/softmax" : `/layers/${encodeURIComponent(layer)}/detail`;
  const params = { image: state.image, channel, y, x, ...extra };
  let d;
  try {
    d = await getJSON(api(path, params));
  } catch (e) {
    message(e.message);
    page.set("detail", "error");
    return;
  }
  state.shown = { layer, channel, y, x, path, params, d };
  drawDetail();
  page.set("detail", "ready");
  document.querySelectorAll("canvas.neuron.selected").forEach((c) => c.classList.remove("selected"));
  const chosen = document.querySelector(`canvas.neuron[data-layer="${CSS.escape(layer)}"][data-channel="${channel}"]`);
  if (chosen) {
    chosen.classList.add("selected");
    chosen.scrollIntoView({ block: "nearest", inline: "nearest" });  // the overview narrowed beside the panel
  }
  timings({ detailMs: performance.now() - t0 });
  root.scrollIntoView({ block: "nearest", behavior: "instant" });
}

/** Draw the detail fetched last (again after a language switch: from the same numbers, no request). */
function drawDetail() {
  const { layer, channel, y, x, path, params, d } = state.shown;
  const root = $("detail");
  try {
    renderDetail(root, d, {
      onClose: closeDetail,
      hover: (text, ev) => tooltip(text ? { text, x: ev.clientX, y: ev.clientY } : null),
      reload: (more) => select(layer, channel, y, x, more),
      fetchMore: (p) => getJSON(api(path, { ...params, ...p })),
      fetchPosition: async (p) => (await getJSON(api(path, { ...params, ...p, maps: 0 }))).position,
    });
  } catch (e) {
    message(() => t("page.could_not_draw", { layer, error: e.message }));
    page.set("detail", "error");
    throw e;
  }
  if (layer !== "__softmax__" && state.trace.layers.find((l) => l.name === layer)?.shape.length === 3) {
    const pgButton = el("button", "link", t("page.open_playground"));
    pgButton.onclick = () => openPlayground(layer, channel);
    root.querySelector(".detail-head").insertBefore(pgButton, root.querySelector(".close"));
  }
}

function closeDetail() {
  state.selected = null;
  state.shown = null;
  $("detail").hidden = true;
  page.set("detail", "closed");
}

async function openPlayground(layer, channel) {
  const spatial = state.trace.layers.filter((l) => l.shape.length === 3 && l.kind !== "input");
  state.playground = new Playground($("playground"), {
    model: state.model, image: state.image, trace: state.trace,
    layer: layer || (spatial[0] || state.trace.layers[0]).name, channel: channel || 0,
  });
  await state.playground.render();
  $("playground").scrollIntoView({ block: "nearest" });
}

async function showSummary() {
  state.summary = await getJSON(api("/summary", { image: state.image }));
  renderSummary($("summary"), state.summary);
}

async function guarded(fn) {
  try {
    message(null);
    await fn();
  } catch (e) {
    message(e.message);
    showThumbnails();
    page.update("overview", (s) => (s === "loading" ? "error" : s));
  }
}

function wire() {
  /** @type {NodeListOf<HTMLElement>} */ (document.querySelectorAll("[data-mode]")).forEach((b) => {
    b.onclick = () => {
      state.mode = b.dataset.mode;
      document.querySelectorAll("[data-mode]").forEach((o) => o.classList.toggle("active", o === b));
      if (state.overview) state.overview.setMode(state.mode);
    };
  });
  $("upload").onchange = (ev) => guarded(async () => {
    const input = /** @type {HTMLInputElement} */ (ev.target);
    const file = input.files[0];
    input.value = "";
    if (!file) return;
    const id = await upload(state.model, file);
    await selectImage(id);
  });
  $("url-form").onsubmit = (ev) => guarded(async () => {
    ev.preventDefault();
    const input = /** @type {HTMLInputElement} */ ($("upload-url"));
    if (!input.value.trim()) return;
    const id = await uploadUrl(state.model, input.value.trim());
    input.value = "";
    await selectImage(id);
  });
  const pad = drawingPad($("draw"), (blob, final) => guarded(async () => {
    const id = await upload(state.model, blob);
    if (final) return selectImage(id);
    // live: only the prediction follows the pen; the whole overview redraws when the stroke ends
    const live = await getJSON(api("/trace", { image: id }));
    if (page.get("overview") === "ready") {
      state.trace = { ...state.trace, prediction: live.prediction, warnings: live.warnings };
      showPrediction();
    }
  }));
  $("draw-clear").onclick = () => pad.clear();
  $("btn-summary").onclick = () => guarded(async () => {
    if (!$("summary").hidden) { $("summary").hidden = true; return; }
    await showSummary();
  });
  $("btn-fold").onclick = () => {
    if (!state.overview) return;
    state.folded = !state.folded;
    state.overview.foldAll(state.folded);
    foldLabel();
  };
  $("btn-details").onclick = () => page.update("details", (d) => (d === "shown" ? "hidden" : "shown"));
  page.on("details", (d) => {
    $("btn-details").setAttribute("aria-pressed", String(d === "shown"));
    if (state.overview) { state.overview.drawArcs(); state.overview.scheduleEdges(); }
  });
  $("btn-playground").onclick = () => guarded(() => openPlayground(state.selected?.[0], state.selected?.[1]));
  window.addEventListener("error", (e) => message(() => t("page.page_error", { error: e.message })));
  window.addEventListener("unhandledrejection", (e) => message(e.reason?.message || String(e.reason)));
}

/** The top bar's language switch: the languages under their own names. */
function languageSwitch() {
  const sel = /** @type {HTMLSelectElement} */ ($("language-select"));
  sel.replaceChildren(...LANGUAGES.map((l) => new Option(l.name, l.code)));
  sel.value = language();
  // not guarded(): a switch keeps the message shown (redrawn in the new language)
  sel.onchange = () => chooseLanguage(sel.value).catch((e) => message(e.message));
  onLanguage((lang) => { sel.value = lang; });
}

/** After a language switch, everything drawn is drawn again from what the page holds (no new trace). */
function redraw() {
  if (shownMessage) message(shownMessage.text, shownMessage.kind);
  if (!state.models) return;
  listModels();
  if (!state.info) return;
  modelNote();
  renderSamples($("samples"), state.info, state.image, selectImage);  // their titles and alt texts
  foldLabel();
  if (!state.trace) return;
  traceNote();
  showPrediction();
  if (state.overview) state.overview.redraw();
  if (state.shown && !$("detail").hidden) drawDetail();
  if (state.summary && !$("summary").hidden) renderSummary($("summary"), state.summary);
}

wire();
languageSwitch();
onLanguage(redraw);
closeOnEscape(document);
mountSearch(/** @type {HTMLInputElement} */ ($("search")), () => state.overview);
mountWhy(() => state);  // the Why? panel and What does it look for? read the current model, image and selection
mountLookFor(() => state);
mountLearn(() => state);  // Learn mode and the first-visit tour read the model, image, trace and selection
guarded(loadModels);
