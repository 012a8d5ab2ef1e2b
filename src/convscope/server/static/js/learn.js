// @ts-check
// Learn mode: a short article per layer kind (convolution, its padding / stride / dilation,
// activations, pooling, batch norm, the residual add, flatten, the fully connected layer,
// softmax, the loss and the optimizer), each written out on the learner's own numbers.
//
// An article opened from a detail view reads that view's JSON (the very numbers the detail
// shows, at the position it shows); opened from the contents it asks the existing detail
// endpoints for the model's first layer of that kind, at the centre of its first channel.
// The optimizer's step needs a gradient, which no forward pass has: /learn/step computes it
// (server/routes_learn.py). The words come from the catalogues' "learn" section with the
// live numbers as {placeholders}; formulas are built from parts here, numbers as text with
// their exact value in data-value (the browser test reads those).

import { getJSON, q } from "./api.js";
import { fmt } from "./colors.js";
import { el, fill, byId } from "./dom.js";
import { t, has, onLanguage, chooseLanguage, language, LANGUAGES } from "./i18n.js";
import { grid, mapValues } from "./widgets.js";
import { mountTour } from "./tour.js";
import { page } from "./page.js";

/** The articles, in the order the contents list them. */
export const ARTICLES = ["conv", "geometry", "activation", "pool", "batchnorm", "add", "flatten", "linear", "softmax", "loss", "optimizer"];

// trace kinds (trace/records.py ELEMENTWISE_KINDS, POOL_KINDS) an article's numbers come from
const ACTIVATIONS = ["relu", "relu6", "silu", "sigmoid", "tanh", "activation"];
const POOLS = ["maxpool", "avgpool", "adaptive_avgpool", "adaptive_maxpool"];
/** @type {Record<string, (layer: {kind: string, shape: number[]}) => boolean>} */
const LAYER_OF = {
  conv: (l) => l.kind === "conv",
  geometry: (l) => l.kind === "conv",
  activation: (l) => ACTIVATIONS.includes(l.kind),
  pool: (l) => POOLS.includes(l.kind) && l.shape.length === 3,
  batchnorm: (l) => l.kind === "batchnorm",
  add: (l) => l.kind === "add" && l.shape.length === 3,
  flatten: (l) => l.kind === "flatten",
  linear: (l) => l.kind === "linear",
};

/**
 * What the page gives Learn mode: main.js's state (the model and image picked, the trace,
 * the selected neuron).
 * @typedef {{model: string, image: string, trace: any, selected: any[] | null}} PageState
 */

/** @type {() => PageState} */
let getState = () => null;
/** @type {{article: string, data: any} | null} */
let shown = null;
/** The detail view the panel was opened from: the contents' articles on its kind read its numbers too. */
/** @type {{detail?: any, root?: HTMLElement, quiet?: boolean}} */
let opener = {};
let seq = 0;

/**
 * The articles a detail view links to, its own kind first ([] for views without one).
 * @param {any} d the detail JSON
 * @returns {string[]}
 */
export function articlesFor(d) {
  if (d.view === "conv") return ["conv", "geometry"];
  if (d.view === "softmax") return ["softmax", "loss"];
  if (d.view === "generic") return d.kind === "add" && d.position ? ["add"] : [];
  return ARTICLES.includes(d.view) ? [d.view] : [];
}

/**
 * The "learn" link for a detail view's header, or null when no article covers its kind.
 * Opening it reads the detail's own numbers; a conv detail's current position (the
 * step-by-step view moves with the pointer) is asked for again when it has moved.
 * @param {any} d the detail JSON the view was drawn from
 * @param {HTMLElement} [root] the detail panel (its conv formula says where it is now)
 * @returns {HTMLButtonElement | null}
 */
export function learnLink(d, root) {
  const kinds = articlesFor(d);
  if (!kinds.length) return null;
  const b = el("button", "link learn-link", t("learn.link"));
  b.dataset.article = kinds[0];
  b.title = t(`learn.${kinds[0]}.title`);
  b.onclick = () => openArticle(kinds[0], { detail: d, root });
  // an open article follows the selection: another neuron, or another kind of layer
  if (!panel().hidden && shown) openArticle(kinds.includes(shown.article) ? shown.article : kinds[0], { detail: d, root, quiet: true });
  return b;
}

/** @returns {string} the API path prefix of the current model */
function modelPath() {
  return `/api/models/${encodeURIComponent(getState().model)}`;
}

/**
 * The panel, made once: a drawer on the right with the contents, the article and a language switch.
 * @returns {HTMLElement}
 */
function panel() {
  let p = byId("learn");
  if (p) return p;
  p = el("section", "learn-panel");
  p.id = "learn";
  p.hidden = true;
  p.setAttribute("role", "dialog");
  p.setAttribute("aria-labelledby", "learn-title");
  p.addEventListener("keydown", (ev) => {
    if (ev.key !== "Escape") return;
    ev.stopPropagation();  // the page's Escape would close the detail behind the drawer too
    closeLearn();
  });
  document.body.appendChild(p);
  // Escape with the focus outside the drawer closes it too (and whatever else the page closes)
  document.addEventListener("keydown", (ev) => { if (ev.key === "Escape" && !p.hidden) closeLearn(); });
  return p;
}

export function closeLearn() {
  const p = panel();
  p.hidden = true;
  p.dataset.state = "closed";
  shown = null;
  byId("btn-learn")?.setAttribute("aria-expanded", "false");
}

/**
 * Open an article: from a detail view (its JSON) or from the contents (fetch the numbers).
 * @param {string} article one of ARTICLES
 * @param {{detail?: any, root?: HTMLElement, quiet?: boolean}} [from] quiet: leave the focus where it is
 */
export async function openArticle(article, from = {}) {
  const p = panel();
  const my = ++seq;
  opener = from.detail && from.root && !from.root.hidden ? from : {};
  p.hidden = false;
  p.dataset.state = "loading";
  p.dataset.article = article;
  byId("btn-learn")?.setAttribute("aria-expanded", "true");
  let data;
  try {
    data = await load(article, from);
  } catch (e) {
    data = { error: e.message };
  }
  if (my !== seq) return;
  shown = { article, data };
  render();
  if (!from.quiet) /** @type {HTMLElement} */ (p.querySelector("#learn-title"))?.focus();
  p.dataset.state = "ready";
}

/**
 * The numbers of an article: the detail's own when it came from one, else fetched.
 * @param {string} article
 * @param {{detail?: any, root?: HTMLElement}} from
 */
async function load(article, from) {
  const st = getState();
  if (!st || !st.trace) return { error: t("learn.live.noTrace") };
  if (article === "optimizer") return optimizerData();
  const d = from.detail && articlesFor(from.detail).includes(article) ? from.detail : null;
  if (article === "softmax" || article === "loss") {
    if (d) return { d };
    if (!st.trace.prediction.top.length) return { missing: true };
    return { d: await getJSON(`${modelPath()}/softmax?${q({ image: st.image })}`) };
  }
  if (d) return { d, pos: d.view === "conv" ? await convNow(d, from.root) : null };
  const layer = st.trace.layers.find(LAYER_OF[article]);
  if (!layer) return { missing: true };
  const got = await telling(layer, st);
  return { d: got, pos: got.view === "conv" ? got.position : null };
}

/** The index of a map's largest magnitude. */
function peak(m) {
  const v = mapValues(m);
  let best = 0;
  for (let i = 1; i < v.length; i++) if (Math.abs(v[i]) > Math.abs(v[best])) best = i;
  return best;
}

/**
 * A layer's detail where its numbers say something: the first of its first 8 channels whose map
 * is not constant (a dead channel's zeros teach nothing), at that map's largest value; a vector
 * layer's unit: the predicted class for the output layer, else (flatten) the peak of a channel.
 * @param {{name: string, shape: number[]}} layer
 * @param {PageState} st
 */
async function telling(layer, st) {
  const ask = (params) => getJSON(`${modelPath()}/layers/${encodeURIComponent(layer.name)}/detail?${q({ image: st.image, ...params })}`);
  const [c, h, w] = layer.shape;
  if (layer.shape.length !== 3) {
    const out = layer.name === st.trace.prediction.output_layer;
    const got = await ask({ channel: out ? st.trace.prediction.top[0].index : Math.floor(c / 3) });
    if (got.view !== "flatten" || !got.input) return got;
    const [c0] = got.source, [, hh, ww] = got.input_shape;
    return ask({ channel: c0 * hh * ww + peak(got.input) });
  }
  let got = null, channel = 0;
  for (; channel < Math.min(c, 8); channel++) {
    got = await ask({ channel, y: Math.floor(h / 2), x: Math.floor(w / 2) });
    if (got.output && got.output.max > got.output.min) break;
  }
  if (channel === Math.min(c, 8)) return got;  // every channel looked at is constant: its centre
  const i = peak(got.output), ow = got.output.shape[1];
  return ask({ channel, y: Math.floor(i / ow), x: i % ow });
}

/**
 * The position a conv detail shows now (its step-by-step view follows the pointer and the
 * input-channel chooser): the JSON's own position, or asked for again when it moved.
 * @param {any} d
 * @param {HTMLElement} [root]
 */
async function convNow(d, root) {
  const sec = /** @type {HTMLElement | null} */ (root?.querySelector(".conv-formula"));
  const y = Number(sec?.dataset.y ?? d.position.y), x = Number(sec?.dataset.x ?? d.position.x);
  const index = Number(sec?.dataset.index ?? d.channels[0].index);
  const pos = d.position;
  if (pos.y === y && pos.x === x && pos.channels.some((c) => c.index === index)) return { ...pos, shownIndex: index };
  const st = getState();
  // start counts in the neuron's own list of input channels (a grouped conv reads a few)
  const start = Math.max(0, d.channels.findIndex((c) => c.index === index));
  const got = await getJSON(`${modelPath()}/layers/${encodeURIComponent(d.layer)}/detail?${q(
    { image: st.image, channel: d.channel, y, x, start, count: 1, maps: 0 })}`);
  return { ...got.position, shownIndex: index };
}

/** The step endpoint's numbers, with the learning rate of the newest training run when there is one. */
async function optimizerData() {
  const runs = await getJSON("/api/runs").catch(() => ({ runs: [] }));
  const run = (runs.runs || []).find((r) => r.last && typeof r.last.lr === "number" && r.last.lr > 0);
  const lr = run ? run.last.lr : 0.01;
  const step = await getJSON(`${modelPath()}/learn/step?${q({ image: getState().image, lr })}`);
  return { step, run: run ? { name: run.name, lr, epochs: run.epochs } : null };
}

// -- drawing ---------------------------------------------------------------------------------

/**
 * A number as the article shows it, its exact value kept in data-value (and data-k).
 * @param {number} v
 * @param {string} [key]
 * @param {number} [digits]
 */
function n(v, key = "", digits = 4) {
  const s = el("span", "num", fmt(v, digits));
  s.dataset.value = String(v);
  if (key) s.dataset.k = key;
  return s;
}

/** "+ 0.5" or "− 0.5", a term after the first (its data-value keeps the sign). */
function term(v, key = "", digits = 4) {
  const s = n(Math.abs(v), key, digits);
  s.dataset.value = String(v);
  return [v < 0 ? " − " : " + ", s];
}

/** A formula line from parts (text and nodes). */
function line(...parts) {
  return el("div", "formula learn-formula", parts);
}

/**
 * A titled grid whose cells keep their exact values (data-value), row by row; null is padding.
 * @param {(number | null)[][]} values
 * @param {string} title
 * @param {string} key data-k of the grid
 */
function valuedGrid(values, title, key) {
  const box = grid(values, { title });
  const cells = box.querySelectorAll("td");
  values.flat().forEach((v, i) => { /** @type {HTMLElement} */ (cells[i]).dataset.value = v === null ? "pad" : String(v); });
  /** @type {HTMLElement} */ (box.querySelector("table")).dataset.k = key;
  return box;
}

/** A map's value at (y, x) (the detail JSON's packed maps). */
function at(m, y, x) {
  return mapValues(m)[y * m.shape[1] + x];
}

/** The article's live part for each kind: {params for the text, nodes}. */
/** @type {Record<string, (data: any) => {params: Record<string, unknown>, live: Node[]}>} */
const LIVE = {
  conv({ d, pos }) {
    const pc = pos.channels.find((c) => c.index === pos.shownIndex) || pos.channels[0];
    const [kh, kw] = d.params.kernel_size;
    const params = { layer: d.layer, channel: d.channel, y: pos.y, x: pos.x, kh, kw, cin: pos.total_channels,
      index: pc.index, input: d.input_layer, sum: fmt(pc.sum, 4), value: fmt(pos.value, 4) };
    const grids = el("div", "formula-grids", [
      valuedGrid(pc.patch, t("learn.live.window", params), "window"), el("span", "op", "⊙"),
      valuedGrid(pc.kernel, t("learn.live.kernel"), "kernel"), el("span", "op", "="),
      valuedGrid(pc.products, t("learn.live.products"), "products"),
      el("span", "op", ["Σ = ", n(pc.sum, "channel-sum")])]);
    const sums = pos.channel_sums || [];
    const SHOW = 6;
    const terms = sums.slice(0, SHOW).flatMap((v, i) => (i ? term(v, "", 3) : [n(v, "", 3)]));
    const more = sums.length > SHOW ? [` + … (${t("learn.live.more", { n: sums.length - SHOW })})`] : [];
    return {
      params,
      live: [grids, line(`${d.layer}[${d.channel}, ${pos.y}, ${pos.x}] = `, terms, more, " = ", n(pos.total, "total"),
        term(pos.bias ?? 0, "bias"), " = ", el("b", "", n(pos.value, "value", 5))),
      el("p", "note", t("learn.live.check", { value: fmt(pos.trace_value, 6) }))],
    };
  },
  geometry({ d, pos }) {
    const p = d.params;
    const [h, w] = d.channels[0].input.shape, [oh, ow] = d.output.shape;
    const [left, right, top, bottom] = p.pad;
    // each axis on its own numbers: a 1×7 kernel, a stride of (2, 1) or padding only left and
    // right give the width an output size of its own (the article used to write the height only)
    const axis = (/** @type {number} */ i, size, before, after) => {
      const k = p.kernel_size[i], s = p.stride[i], dil = p.dilation[i], span = dil * (k - 1) + 1;
      return { size, before, after, k, s, dil, span, out: Math.floor((size + before + after - span) / s) + 1 };
    };
    const rows = axis(0, h, top, bottom), cols = axis(1, w, left, right);
    const same = ["size", "before", "after", "k", "s", "dil"].every((key) => rows[key] === cols[key]);
    /** one number when both axes have it, else "height×width" */
    const both = (/** @type {string} */ key) => (rows[key] === cols[key] ? rows[key] : `${rows[key]}×${cols[key]}`);
    const params = { layer: d.layer, h, w, oh, ow, k: both("k"), s: both("s"), d: both("dil"), top, bottom, left, right,
      span: `${rows.span}×${cols.span}`, y: pos.y, x: pos.x, row: pos.y * rows.s - top, col: pos.x * cols.s - left };
    const formula = (/** @type {string} */ name, a, key, lo, hi) => line(
      `${name}_out = ⌊(${name} + ${lo} + ${hi} − d·(k − 1) − 1) / s⌋ + 1 = ⌊(${a.size} + ${a.before} + ${a.after} − ${a.dil}·${a.k - 1} − 1) / ${a.s}⌋ + 1 = `,
      el("b", "", n(a.out, key)));
    return {
      params,
      live: [formula("H", rows, "out-size", "p_top", "p_bottom"),
        ...(same ? [] : [formula("W", cols, "out-width", "p_left", "p_right")]),
        el("p", "note", t("learn.live.geometryCheck", { oh, ow })),
        line(t("learn.live.windowAt", params))],
    };
  },
  activation({ d }) {
    const { y, x } = d.position;
    const spatial = d.channel !== null;  // a map of one channel, else the whole vector
    const vin = spatial ? at(d.input, y, x) : mapValues(d.input)[y];
    const vout = spatial ? at(d.output, y, x) : mapValues(d.output)[y];
    const all = mapValues(d.input);
    const negative = all.filter((v) => v < 0).length;
    const params = { layer: d.layer, channel: d.channel ?? y, fname: d.fname, y, x, vin: fmt(vin, 4), vout: fmt(vout, 4), negative, total: all.length };
    const relu = d.fname === "ReLU";
    return {
      params,
      live: [line(d.formula),
        line(`${d.fname}(`, n(vin, "input"), ") = ", relu ? ["max(0, ", n(vin), ") = "] : [], el("b", "", n(vout, "output")))],
    };
  },
  pool({ d }) {
    const pos = d.position;
    const vals = pos.values.flat().filter((v) => v !== null);
    const max = !pos.divisor;
    const terms = vals.flatMap((v, i) => [i ? (max ? ", " : " + ") : "", n(v, "", 3)]);
    const params = { layer: d.layer, channel: d.channel, y: pos.y, x: pos.x, h: pos.values.length, w: pos.values[0].length,
      value: fmt(pos.value, 4), divisor: pos.divisor };
    return {
      params,
      live: [valuedGrid(pos.values, t("learn.live.poolWindow", params), "window"),
        line(max ? ["max(", terms, ")"] : ["(", terms, `) / ${pos.divisor}`], " = ", el("b", "", n(pos.value, "value", 5)))],
    };
  },
  batchnorm({ d }) {
    const { y, x } = d.position;
    const spatial = d.channel !== null;
    const vin = spatial ? at(d.input, y, x) : mapValues(d.input)[y];
    const vout = spatial ? at(d.output, y, x) : mapValues(d.output)[y];
    const centred = vin - d.mean, sd = Math.sqrt(d.var + d.eps), normed = centred / sd, mine = normed * d.gamma + d.beta;
    const params = { layer: d.layer, channel: d.channel, y, x, mean: fmt(d.mean, 4), var: fmt(d.var, 4) };
    return {
      params,
      live: [line("y = (x − μ) / √(σ² + ε) · γ + β"),
        line("= (", n(vin, "input"), " − ", n(d.mean, "mean"), ") / √(", n(d.var, "var"), " + ", n(d.eps, "eps"), ") · ",
          n(d.gamma, "gamma"), term(d.beta, "beta")),
        line("= ", n(centred, "centred"), " / ", n(sd, "sd"), " · ", n(d.gamma), term(d.beta), " = ", n(normed, "normed"), " · ",
          n(d.gamma), term(d.beta), " = ", el("b", "", n(mine, "value", 5))),
        el("p", "note", t("learn.live.check", { value: fmt(vout, 6) }))],
    };
  },
  add({ d }) {
    const { y, x } = d.position;
    const parts = d.inputs.map((i) => ({ name: i.name, v: at(i.map, y, x) }));
    const out = at(d.output, y, x);
    const params = { layer: d.layer, channel: d.channel, y, x, a: parts[0]?.name, b: parts[1]?.name };
    return {
      params,
      live: [line(parts.flatMap((p, i) => [i ? " + " : "", `${p.name} `, n(p.v, "input")]), " = ", el("b", "", n(out, "value", 5)))],
    };
  },
  flatten({ d }) {
    const [c, y, x] = d.source, [, h, w] = d.input_shape;
    const params = { layer: d.layer, input: d.input_layer, c, y, x, h, w, unit: d.unit, C: d.input_shape[0] };
    return {
      params,
      live: [line(`${d.input_layer}[${c}, ${y}, ${x}] → index = c·H·W + y·W + x = ${c}·${h}·${w} + ${y}·${w} + ${x} = `,
        el("b", "", n(c * h * w + y * w + x, "index"))),
      line(`${d.layer}[${d.unit}] = `, n(d.value, "value", 5))],
    };
  },
  linear({ d }) {
    const few = d.top.slice(0, 3);
    const shown = few.reduce((a, tt) => a + tt.product, 0);
    const params = { layer: d.layer, unit: d.unit, inputs: d.inputs, value: fmt(d.value, 4) };
    return {
      params,
      live: [line(few.flatMap((tt, i) => [i ? " + " : "", "(", n(tt.w, "w", 3), " × ", n(tt.x, "x", 3), ")"]),
        term(d.sum - shown, "rest"), ` (${t("learn.live.more", { n: d.inputs - few.length })})`),
      line("= ", n(d.sum, "sum"), term(d.bias ?? 0, "bias"), " = ", el("b", "", n(d.value, "value", 5)))],
    };
  },
  softmax({ d }) {
    const top = d.rows.slice(0, 3), best = d.rows[0];
    const e = d.shift ? "exp(z − m)" : "exp(z)";
    const params = { classes: d.classes, name: best.name, prob: (100 * best.prob).toFixed(2), m: fmt(d.shift, 4) };
    const table = el("table", "learn-softmax");
    fill(table, el("tr", "", [el("th", "", t("learn.live.class")), el("th", "", "z"), el("th", "", e), el("th", "", "p")]));
    top.forEach((r) => table.appendChild(el("tr", "", [el("td", "", r.name), el("td", "", n(r.logit, "logit")),
      el("td", "", n(r.exp, "exp")), el("td", "", n(r.prob, "prob"))])));
    return {
      params,
      live: [table, line(`p(${best.name}) = ${e} / Σ ${e} = `, n(best.exp), " / ", n(d.sum_exp, "sum-exp"), " = ",
        el("b", "", n(best.prob, "value", 5)))],
    };
  },
  loss({ d }) {
    const [best, second] = d.rows;
    const params = { name: best.name, prob: fmt(best.prob, 4), loss: fmt(-Math.log(best.prob), 4),
      other: second ? second.name : "", otherProb: second ? fmt(second.prob, 4) : "", otherLoss: second ? fmt(-Math.log(second.prob), 4) : "" };
    return {
      params,
      live: [line(`L = −ln p(${best.name}) = −ln `, n(best.prob, "prob"), " = ", el("b", "", n(-Math.log(best.prob), "value"))),
        ...(second ? [line(`L = −ln p(${second.name}) = −ln `, n(second.prob), " = ", n(-Math.log(second.prob), "other"))] : [])],
    };
  },
  optimizer({ step, run }) {
    const where = `${step.parameter}[${step.index.join(", ")}]`;
    const params = { where, lr: fmt(step.lr, 4), name: step.target_name, loss: fmt(step.loss, 4), after: fmt(step.loss_after, 4),
      run: run ? run.name : "", epochs: run ? run.epochs : 0 };
    return {
      params,
      live: [el("p", "note learn-source", t(run ? "learn.live.fromRun" : "learn.live.worked", params)),
        line(`w = ${where} = `, n(step.w, "w", 6), "; g = ∂L/∂w = ", n(step.grad, "grad", 4)),
        line("w − lr · g = ", n(step.w, "", 6), " − ", n(step.lr, "lr"), " × ", step.grad < 0 ? ["(", n(step.grad, "", 4), ")"] : n(step.grad, "", 4),
          " = ", el("b", "", n(step.new_w, "value", 6))),
        line("L: ", n(step.loss, "loss"), " → ", n(step.loss_after, "loss-after"))],
    };
  },
};

/** Redraw the open article (after opening it, and after a language switch). */
function render() {
  const p = panel();
  if (!shown) return;
  const { article, data } = shown;
  const close = el("button", "close", "×");
  close.title = t("learn.close");
  close.setAttribute("aria-label", t("learn.close"));
  close.onclick = closeLearn;
  const title = el("h2", "", t(`learn.${article}.title`));
  title.id = "learn-title";
  title.tabIndex = -1;
  const lang = /** @type {HTMLSelectElement} */ (el("select", "learn-lang"));
  LANGUAGES.forEach((l) => lang.appendChild(new Option(l.name, l.code, false, l.code === language())));
  lang.setAttribute("aria-label", t("learn.language"));
  lang.onchange = () => chooseLanguage(lang.value);
  const toc = el("nav", "learn-toc");
  toc.setAttribute("aria-label", t("learn.contents"));
  toc.append(el("h3", "", t("learn.contents")), el("ol", "", ARTICLES.map((a) => {
    const b = el("button", "link", t(`learn.${a}.title`));
    b.dataset.article = a;
    if (a === article) b.setAttribute("aria-current", "page");
    b.onclick = () => openArticle(a, { ...opener, quiet: false });
    return el("li", "", b);
  })));
  const body = el("article", "learn-article");
  body.dataset.article = article;
  let live = null;
  if (data.error) live = { params: {}, live: [el("p", "warn", t("learn.live.failed", { error: data.error }))] };
  else if (data.missing) live = { params: {}, live: [el("p", "note", t("learn.live.missing", { kind: t(`learn.${article}.title`) }))] };
  else {
    try {
      live = LIVE[article](data);
    } catch (e) {  // numbers of a shape the article does not know: say so rather than stay "loading"
      live = { params: {}, live: [el("p", "warn", t("learn.live.failed", { error: e.message }))] };
    }
  }
  for (const k of ["layer", "channel", "y", "x", "unit"]) if (live.params[k] !== undefined) body.dataset[k] = String(live.params[k]);
  for (let i = 1; has(`learn.${article}.p${i}`); i++) body.appendChild(el("p", "", t(`learn.${article}.p${i}`, live.params)));
  const yours = el("section", "learn-live");
  yours.setAttribute("aria-label", t("learn.live.title"));
  yours.appendChild(el("h3", "", t("learn.live.title")));
  if (Object.keys(live.params).length && has(`learn.${article}.yours`)) yours.appendChild(el("p", "learn-yours", t(`learn.${article}.yours`, live.params)));
  yours.append(...live.live);
  body.appendChild(yours);
  fill(p, el("header", "learn-head", [el("span", "learn-kicker", t("learn.button")), title, lang, close]),
    el("div", "learn-cols", [toc, body]));
}

/**
 * Mount Learn mode and the first-visit tour: the top bar's "learn" and "tour" buttons, the
 * panel, its redraw on a language switch (main.js loads the catalogues; their arrival is
 * the first switch, which labels the buttons).
 * @param {() => PageState} state main.js's state, read when an article opens
 */
export function mountLearn(state) {
  getState = state;
  if (!document.querySelector('link[href="/static/learn.css"]')) {
    const css = el("link");
    Object.assign(css, { rel: "stylesheet", href: "/static/learn.css" });
    document.head.appendChild(css);
  }
  const bar = document.querySelector(".topbar");
  const b = el("button", "tool", t("learn.button"));
  b.id = "btn-learn";
  b.title = t("learn.buttonTitle");
  b.setAttribute("aria-expanded", "false");
  b.onclick = () => {
    if (!panel().hidden) { closeLearn(); return; }
    const sel = getState()?.selected;
    const layer = sel && getState().trace?.layers.find((l) => l.name === sel[0]);
    const fromSelection = layer && ARTICLES.find((a) => LAYER_OF[a] && LAYER_OF[a](layer));
    openArticle(fromSelection || "conv");
  };
  bar.appendChild(b);
  // another model or image: an open article reads the new numbers (one opened from a detail
  // follows that detail instead, which main.js draws again for the new image)
  page.on("overview", (st) => {
    const fromDetail = opener.detail && opener.root && !opener.root.hidden;
    if (st === "ready" && shown && !panel().hidden && !fromDetail) openArticle(shown.article, { quiet: true });
  });
  onLanguage(() => {
    b.textContent = t("learn.button");
    b.title = t("learn.buttonTitle");
    render();
  });
  mountTour(bar);
}
