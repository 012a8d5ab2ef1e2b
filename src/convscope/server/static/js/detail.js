// @ts-check
// Detail views: the arithmetic behind one neuron, with the server's real numbers.

import { fmt } from "./colors.js";
import { el, fill, add, html } from "./dom.js";
import { mapView, grid, num } from "./widgets.js";
import { t, say, number } from "./i18n.js";
import { learnLink } from "./learn.js";

const POS_DELAY = 450;          // ms a step of play waits, at first
const SPEEDS = [1000, 450, 150, 50, 10]; // the speed control's steps (ms a step)

/** "+ 0.5" or "− 0.5": a term of a sum as written by hand. */
function signed(v, digits) {
  return `${v < 0 ? "−" : "+"} ${fmt(Math.abs(v), digits)}`;
}

/** The computed value (data-k="value") and, beside it, the trace's own value for the same neuron. */
function valueAndTrace(value, traced) {
  return [html`<b class="num" data-k="value" data-value="${value}">${fmt(value, 5)}</b>`,
    html`<span class="check" data-k="trace-value" data-value="${traced}">${t("detail.trace_value", { value: fmt(traced, 5) })}</span>`];
}

/** A map's caption: "conv_1_1 · ch 3" (the layer's name is data, shown as it is). */
function chLabel(layer, channel) {
  return channel === null || channel === undefined ? layer : t("detail.ch", { layer, channel });
}

/** The detail's title: the layer's name and which neuron (and class, and position), from the view's fields. */
function titleOf(d) {
  if (d.view === "softmax") return t("detail.softmax_title");
  if (d.unit === undefined || d.unit === null) {
    return d.channel === null || d.channel === undefined ? d.layer : t("detail.title_channel", { layer: d.layer, channel: d.channel });
  }
  return t("detail.title_unit", { layer: d.layer, unit: d.unit })
    + (d.class_name !== undefined ? t("detail.title_class", { name: d.class_name }) : "")
    + (d.view === "linear" && d.position ? t("detail.title_at", { y: d.position.y, x: d.position.x }) : "");
}

/** What the layer does (a convolution's geometry, written here; the server's sentence for the
 * others, or the module's name), and which layers it reads. */
function subtitleOf(d) {
  if (d.view === "softmax") return t("detail.softmax_sub", { n: number(d.classes), layer: d.layer });
  if (d.what === undefined) return d.subtitle || "";  // a server from before the sentences
  const reads = d.reads.length ? ` · ${t("detail.reads", { layer: d.reads.join(", ") })}` : "";
  if (d.view === "conv") {
    const p = d.params, x = (v) => v.join("×");
    const groups = p.groups > 1 ? t("detail.conv_groups", { groups: p.groups }) : "";
    return t("detail.conv_sub", { kernel: x(p.kernel_size), stride: x(p.stride), dilation: x(p.dilation), pad: `[${p.pad.join(", ")}]` }) + groups + reads;
  }
  return say(d.what) + reads;
}

/** A detail view's formula in words: the server's sentence in the reader's language, else its text. */
function formulaText(d) {
  return d.formula_i18n ? say(d.formula_i18n) : d.formula;
}

/** Render a detail JSON `d` into `root`. ctx: {fetchDetail(params) -> Promise<json>, onClose, hover(text|null, ev)}. */
export function renderDetail(root, d, ctx) {
  root.replaceChildren();
  root.hidden = false;
  const head = el("header", "detail-head");
  head.append(el("h2", "", titleOf(d)), el("span", "sub", subtitleOf(d)));
  const close = el("button", "close", "×");
  close.title = t("detail.close");
  close.onclick = ctx.onClose;
  head.appendChild(close);
  const learn = learnLink(d, root);  // the Learn article on this kind of layer, on these numbers
  if (learn) head.insertBefore(learn, close);
  root.appendChild(head);
  const body = el("div", "detail-body");
  root.appendChild(body);
  const view = VIEWS[d.view] || generic;
  view(body, d, ctx);
  root.dataset.view = d.view;
}

const VIEWS = { conv: conv, activation, pool, batchnorm, linear, flatten, softmax, generic };

/** A formula line: the server's plain text, or html`` markup the page writes around its numbers. */
function formulaBox(...parts) {
  return el("div", "formula", parts);
}

// -- convolution -----------------------------------------------------------------------
function conv(body, d, ctx) {
  const k = d.channels;
  // elastic view
  const sec = el("section", "elastic");
  sec.appendChild(el("h3", "", [t("detail.elastic"), " ", el("span", "hint", t("detail.elastic_hint"))]));
  const wrap = el("div", "elastic-wrap");
  const rows = el("div", "elastic-rows");  // scrolls: every input channel, fetched as it comes into view
  // a scrolling region must be reachable by keyboard and named (axe: scrollable-region-focusable)
  Object.assign(rows, { tabIndex: 0 });
  rows.setAttribute("role", "region");
  rows.setAttribute("aria-label", t("detail.elastic_rows_label"));
  const more = el("div", "elastic-more note", t("detail.loading_more"));
  rows.appendChild(more);
  // one colour range for every intermediate map: the first page's (later ones are clipped to it)
  const lo = Math.min(...k.map((c) => c.intermediate.min));
  const hi = Math.max(...k.map((c) => c.intermediate.max));
  const addRows = (chans) => chans.forEach((c) => {
    const row = el("div", "elastic-row");
    row.dataset.index = c.index;
    row.appendChild(mapView(c.input, { px: 64, label: chLabel(d.input_layer, c.index) }));
    row.appendChild(el("span", "op", "⊛"));
    row.appendChild(grid(c.kernel, { cls: "kernel small", digits: 2 }));
    row.appendChild(el("span", "op", "="));
    row.appendChild(mapView(c.intermediate, { px: 64, range: [lo, hi], label: t("detail.intermediate", { index: c.index }) }));
    row.onclick = () => formula.select(c.index);
    rows.insertBefore(row, more);
  });
  addRows(k);
  wrap.appendChild(rows);
  const sum = el("div", "elastic-sum");
  sum.appendChild(el("div", "op big", "Σ"));
  const sumView = mapView(d.sum, { px: 120, label: t("detail.sum_of", { n: number(d.page.total) }) });
  sum.appendChild(sumView);
  sum.appendChild(el("div", "op big", html`+ ${t("detail.bias")} <span class="num" data-k="bias" data-value="${d.bias ?? 0}">${d.bias === null ? t("detail.no_bias") : fmt(d.bias, 4)}</span> =`));
  const outView = mapView(d.output, { px: 120, label: chLabel(d.layer, d.channel) });
  sum.appendChild(outView);
  const shown = el("div", "note elastic-count");
  sum.appendChild(shown);
  wrap.appendChild(sum);
  sec.appendChild(wrap);
  body.appendChild(sec);
  // formula view
  const formula = convFormula(d, ctx);
  body.appendChild(formula.el);
  const total = d.page.total;
  let next = d.page.start + k.length, loading = false, frame = 0;
  const lines = () => { if (!frame) frame = requestAnimationFrame(() => { frame = 0; elasticLines(wrap, rows, sumView); }); };
  const count = () => {
    shown.textContent = next >= total ? t("detail.all_channels", { total: number(total) }) :
      t("detail.some_channels", { next: number(next), total: number(total) });
    sec.dataset.loaded = String(next);
  };
  /** Whether the end of the list is in view, or within 200 px of it. */
  const nearEnd = () => more.isConnected && more.getBoundingClientRect().top < rows.getBoundingClientRect().bottom + 200;
  /**
   * The next input channels, while the end of the list is in view (64 a request). A failed
   * request says so at the end of the list and is tried again on the next scroll; it never
   * leaves the list waiting for an answer that will not come.
   */
  async function loadMore() {
    if (loading || next >= total) return;
    loading = true;
    let m;
    try {
      m = await ctx.fetchMore({ start: next, count: 64 });
    } catch (e) {
      more.textContent = t("detail.loading_failed", { error: e.message });
      return;
    } finally {
      loading = false;
    }
    more.textContent = t("detail.loading_more");
    addRows(m.channels);
    formula.addChannels(m.channels);
    next += m.channels.length;
    count();
    lines();
    if (next >= total) { more.remove(); seen.disconnect(); return; }
    if (nearEnd()) loadMore(); // still in view: keep going
  }
  // the observer starts a fetch when the end comes into view; the scroll check also catches an end
  // that stayed in view while rows arrived (no intersection change, so no observer callback)
  const seen = new IntersectionObserver((es) => { if (es.some((e) => e.isIntersecting)) loadMore(); }, { root: rows, rootMargin: "0px 0px 200px 0px" });
  if (next < total) seen.observe(more); else more.remove();
  rows.addEventListener("scroll", () => { lines(); if (!loading && next < total && nearEnd()) loadMore(); });
  count();
  lines();
}

/** Thin lines from every intermediate map in view to the sum, as in CNN Explainer's elastic view. */
function elasticLines(wrap, rows, target) {
  const NS = "http://www.w3.org/2000/svg";
  wrap.querySelectorAll("svg.elastic-lines").forEach((s) => s.remove());
  const svg = document.createElementNS(NS, "svg");
  svg.classList.add("elastic-lines");
  const base = wrap.getBoundingClientRect();
  svg.setAttribute("width", base.width);
  svg.setAttribute("height", base.height);
  const t = target.canvas.getBoundingClientRect();
  const tx = t.left - base.left, ty = t.top - base.top + t.height / 2;
  const box = rows.getBoundingClientRect();
  rows.querySelectorAll(".elastic-row").forEach((row) => {
    const r = row.querySelectorAll("canvas")[1].getBoundingClientRect();
    const mid = r.top + r.height / 2;
    if (mid < box.top || mid > box.bottom) return; // scrolled out of the list
    const sx = r.right - base.left, sy = mid - base.top;
    const mx = (sx + tx) / 2;
    const path = document.createElementNS(NS, "path");
    path.setAttribute("d", `M${sx},${sy} C${mx},${sy} ${mx},${ty} ${tx},${ty}`);
    svg.appendChild(path);
  });
  wrap.prepend(svg);
}

function convFormula(d, ctx) {
  const p = d.params;
  const sec = el("section", "conv-formula");
  sec.appendChild(el("h3", "", [t("detail.step_by_step"), " ", el("span", "hint", t("detail.step_hint"))]));
  const [oh, ow] = d.output.shape;
  const controls = el("div", "controls");
  const play = el("button", "play", t("detail.play"));
  const chooser = el("select", "in-channel");
  chooser.setAttribute("aria-label", t("detail.in_channel_label"));
  d.channels.forEach((c) => chooser.appendChild(new Option(t("detail.input_channel", { index: c.index }), c.index)));
  const speed = /** @type {HTMLInputElement} */ (el("input", "speed"));
  Object.assign(speed, { type: "range", min: "0", max: String(SPEEDS.length - 1), step: "1", value: String(SPEEDS.indexOf(POS_DELAY)) });
  speed.setAttribute("aria-label", t("detail.play_speed"));
  const speedText = el("span", "note speed-text");
  const seek = /** @type {HTMLInputElement} */ (el("input", "seek"));
  Object.assign(seek, { type: "range", min: "0", max: String(oh * ow - 1), step: "1" });
  seek.setAttribute("aria-label", t("detail.output_position"));
  const seekText = el("span", "note seek-text");
  controls.append(play, el("label", "note", [t("detail.speed"), " ", speed]), speedText, chooser,
    el("label", "note", [t("detail.position"), " ", seek]), seekText);
  sec.appendChild(controls);
  const stage = el("div", "formula-stage");
  sec.appendChild(stage);
  const numbers = el("div", "formula-numbers");
  sec.appendChild(numbers);
  let state = { index: d.channels[0].index, y: d.position.y, x: d.position.x, pos: d.position };
  let timer = null, seq = 0;
  const delay = () => SPEEDS[Number(speed.value)];
  const showSpeed = () => {
    speedText.textContent = t("detail.ms_a_step", { ms: number(delay()) });
    sec.dataset.delay = String(delay());
  };

  function draw() {
    const c = d.channels.find((c) => c.index === state.index) || d.channels[0];
    const pos = state.pos;
    stage.replaceChildren();
    const inView = mapView(c.input, { px: 150, label: t("detail.input_of", { what: chLabel(d.input_layer, c.index) }) });
    const w = pos.window;
    inView.mark([[w.top, w.left, w.height, w.width, "window"]]);
    const outView = mapView(d.output, {
      px: 150, label: t("detail.output_of", { what: chLabel(d.layer, d.channel) }),
      onHover: (y, x) => { if (!timer && (y !== state.y || x !== state.x)) move(y, x); },
      onClick: (y, x) => move(y, x),
    });
    outView.mark([[pos.y, pos.x, 1, 1, "cell"]]);
    stage.append(inView, el("span", "op", "→"), outView);
    const pc = pos.channels.find((p) => p.index === c.index) || pos.channels[0];
    numbers.replaceChildren();
    const row = el("div", "formula-grids");
    const allv = [...pc.patch.flat().filter((v) => v !== null)];
    row.append(
      grid(pc.patch, { title: t("detail.window_values"), range: [Math.min(...allv, 0), Math.max(...allv, 0)] }),
      el("span", "op", "⊙"),
      grid(pc.kernel, { title: t("detail.kernel_weights") }),
      el("span", "op", "="),
      grid(pc.products, { title: t("detail.products") }),
      el("span", "op", html`Σ = ${num(pc.sum, 4, "channel-sum")}`),
    );
    numbers.appendChild(row);
    const sums = pos.channel_sums;
    const terms = sums ? sums.map((v, i) => html`<span class="term" data-value="${v}">${i === 0 ? fmt(v, 3) : signed(v, 3)}</span> `)
      : t("detail.channel_sums", { n: number(pos.total_channels) });
    const box = formulaBox(
      html`output[${d.channel}, ${pos.y}, ${pos.x}] = Σ<sub>${t("detail.f_channels")}</sub> (${t("detail.f_window")} ⊙ ${t("detail.f_kernel")}) + ${t("detail.bias")} = `,
      html`<span class="channel-terms">${terms}</span> ${signed(pos.bias ?? 0, 4)} = `,
      html`<b>${num(pos.total, 5)}</b> ${signed(pos.bias ?? 0, 4)} = ${valueAndTrace(pos.value, pos.trace_value)}`);
    if (sums && sums.length > 12) box.classList.add("long");  // every term, in a box that scrolls
    numbers.appendChild(box);
    numbers.appendChild(el("div", "note", t("detail.geometry", {
      kernel: p.kernel_size.join("×"), stride: p.stride.join("×"), dilation: p.dilation.join("×"), pad: p.pad.join(", "),
    })));
    sec.dataset.y = pos.y; sec.dataset.x = pos.x; sec.dataset.index = c.index;
    seek.value = String(pos.y * ow + pos.x);
    seekText.textContent = t("detail.seek", { y: pos.y, x: pos.x, h: oh, w: ow });
  }

  async function move(y, x) {
    const my = ++seq;
    // start counts in this neuron's list of input channels (a grouped conv reads only its group's)
    const start = Math.max(0, d.channels.findIndex((c) => c.index === state.index));
    const pos = await ctx.fetchPosition({ y, x, start, count: 1 });
    if (my !== seq) return;
    state = { ...state, y, x, pos };
    draw();
  }

  /** One step of play, then the next after the speed control's delay (read each step, so a
   * change of speed takes effect at once; a step waits for its numbers before the next). */
  let run = 0; // which play the running steps belong to (a pause ends it)
  async function step(mine) {
    let { y, x } = state;
    x += 1;
    if (x >= ow) { x = 0; y = (y + 1) % oh; }
    await move(y, x);
    if (timer && mine === run) timer = setTimeout(() => step(mine), delay());
  }
  play.onclick = () => {
    run++;
    if (timer) { clearTimeout(timer); timer = null; play.textContent = t("detail.play"); return; }
    play.textContent = t("detail.pause");
    const mine = run;
    timer = setTimeout(() => step(mine), delay());
  };
  speed.oninput = showSpeed;
  seek.oninput = () => { const v = Number(seek.value); move(Math.floor(v / ow), v % ow); };
  const choose = async () => {
    state.index = Number(chooser.value);
    await move(state.y, state.x);
  };
  chooser.onchange = choose;
  showSpeed();
  draw();
  return {
    el: sec,
    select: (index) => { chooser.value = index; choose(); sec.scrollIntoView({ block: "nearest" }); },
    /** Input channels fetched later (the elastic list's scroll): choosable too. */
    addChannels: (chans) => chans.forEach((c) => { d.channels.push(c); chooser.appendChild(new Option(t("detail.input_channel", { index: c.index }), c.index)); }),
  };
}

// -- elementwise activations ---------------------------------------------------------
function activation(body, d) {
  body.appendChild(formulaBox(formulaText(d)));
  body.appendChild(inOut(d, (y, x, vin, vout) => `${d.fname}(${fmt(vin, 4)}) = ${fmt(vout, 4)}`));
}

function inOut(d, say) {
  const row = el("div", "inout");
  const a = mapView(d.input, { px: 160, label: t("detail.input_of", { what: chLabel(d.input_layer, d.channel) }) });
  const b = mapView(d.output, { px: 160, label: t("detail.output_of", { what: chLabel(d.layer, d.channel) }) });
  const read = el("div", "readout");
  const show = (y, x) => {
    a.mark([[y, x, 1, 1, "cell"]]);
    b.mark([[y, x, 1, 1, "cell"]]);
    const vin = a.value(y, x), vout = b.value(y, x);
    fill(read, t("detail.at", { y, x }), " ", el("b", "", say(y, x, vin, vout)));
  };
  for (const v of [a, b]) {
    v.canvas.addEventListener("mousemove", (ev) => {
      const r = v.canvas.getBoundingClientRect();
      const [h, w] = d.output.shape;
      show(Math.min(h - 1, Math.floor(((ev.clientY - r.top) / r.height) * h)),
           Math.min(w - 1, Math.floor(((ev.clientX - r.left) / r.width) * w)));
    });
  }
  row.append(a, el("span", "op", "→"), b, read);
  if (d.position) show(d.position.y, d.position.x);
  return row;
}

// -- pooling -----------------------------------------------------------------------------
function pool(body, d, ctx) {
  const stage = el("div", "inout");
  const numbers = el("div", "formula-numbers");
  body.append(stage, numbers);
  let seq = 0;
  function draw(pos) {
    stage.replaceChildren();
    const a = mapView(d.input, { px: 170, label: t("detail.input_of", { what: chLabel(d.input_layer, d.channel) }) });
    const w = pos.window;
    /** @type {[number, number, number, number, string][]} */
    const marks = [[w.top, w.left, w.height, w.width, "window"]];
    if (pos.argmax) marks.push([pos.argmax[0], pos.argmax[1], 1, 1, "argmax"]);
    a.mark(marks);
    const b = mapView(d.output, {
      px: 170, label: t("detail.output_of", { what: chLabel(d.layer, d.channel) }),
      onHover: (y, x) => (y !== pos.y || x !== pos.x) && move(y, x), onClick: (y, x) => move(y, x),
    });
    b.mark([[pos.y, pos.x, 1, 1, "cell"]]);
    stage.append(a, el("span", "op", "→"), b);
    numbers.replaceChildren();
    const local = pos.argmax ? [pos.argmax[0] - w.top, pos.argmax[1] - w.left] : null;
    numbers.append(grid(pos.values, { title: t("detail.window_at", { top: w.top, left: w.left, h: w.height, w: w.width }), mark: local }),
      formulaBox(poolTerms(pos, local), html` = ${valueAndTrace(pos.value, pos.trace_value)}`));
  }
  async function move(y, x) {
    const my = ++seq;
    const pos = await ctx.fetchPosition({ y, x });
    if (my === seq) draw(pos);
  }
  body.prepend(formulaBox(formulaText(d)));
  draw(d.position);
}

/** The pool's formula with its real numbers, `max(0.41, 0.93, 0.12, 0.57)` with the arg-max in
 * bold, or `(0.41 + 0.93 + 0.12 + 0.57) / 4` (padding left out: it adds 0 to a sum, and a max
 * pool pads with −∞). */
function poolTerms(pos, local) {
  const terms = [];
  pos.values.forEach((row, a) => row.forEach((v, b) => {
    if (v === null) return;
    const best = local && local[0] === a && local[1] === b;
    terms.push(html`<span class="num term${best ? " argmax" : ""}" data-value="${v}">${fmt(v, 3)}</span>`);
  }));
  const sep = pos.divisor ? " + " : ", ";
  const list = terms.flatMap((t, i) => (i ? [sep, t] : [t]));
  return pos.divisor ? html`(${list}) / ${pos.divisor}` : html`max(${list})`;
}

// -- batchnorm ---------------------------------------------------------------------------
function batchnorm(body, d) {
  body.appendChild(formulaBox(
    html`y = γ · (x − μ) / √(σ² + ε) + β = <b>${t("detail.scale")}</b> · x + <b>${t("detail.shift")}</b><br>`,
    html`γ = ${num(d.gamma)}, β = ${num(d.beta)}, μ = ${num(d.mean)}, σ² = ${num(d.var)}, ε = ${num(d.eps)} → `,
    html`${t("detail.scale")} = ${num(d.scale, 5, "scale")}, ${t("detail.shift")} = ${num(d.shift, 5, "shift")}`));
  body.appendChild(inOut(d, (y, x, vin, vout) => `${fmt(d.scale, 4)} · ${fmt(vin, 4)} ${signed(d.shift, 4)} = ${fmt(vout, 4)}`));
}

// -- linear --------------------------------------------------------------------------------
function linear(body, d) {
  body.appendChild(formulaBox(
    html`${d.layer}[${d.unit}] = Σ<sub>i</sub> w<sub>i</sub> x<sub>i</sub> + b = `,
    html`${num(d.positive)} (${t("detail.positive_terms")}) ${signed(d.negative, 4)} (${t("detail.negative_terms")}) ${signed(d.bias ?? 0, 4)} = `,
    valueAndTrace(d.value, d.trace_value)));
  const maxAbs = Math.max(...d.top.map((t) => Math.abs(t.product)), 1e-12);
  const list = el("div", "contribs");
  list.appendChild(el("div", "note", t("detail.largest", { n: number(d.top.length), inputs: number(d.inputs) })));
  d.top.forEach((t) => {
    const r = el("div", `contrib ${t.product >= 0 ? "pos" : "neg"}`);
    const where = t.source ? ` ← ${d.source_layer}[${t.source.join(", ")}]` : "";
    fill(r, html`<span class="cname">x<sub>${t.index}</sub>${where}</span>`,
      html`<span class="cterm">${fmt(t.w, 3)} × ${fmt(t.x, 3)}</span>`,
      html`<span class="cbar"><span style="width:${(50 * Math.abs(t.product)) / maxAbs}%"></span></span>`,
      html`<span class="cval">${fmt(t.product, 4)}</span>`);
    list.appendChild(r);
  });
  body.appendChild(list);
}

// -- flatten -------------------------------------------------------------------------------
function flatten(body, d, ctx) {
  body.appendChild(formulaBox(
    html`${d.layer}[${d.unit}] = ${d.input_layer}[${d.source.join(", ")}] &nbsp; (${t("detail.index")} = c·${d.input_shape[1]}·${d.input_shape[2]} + h·${d.input_shape[2]} + w)`,
    html` = <b class="num" data-k="value" data-value="${d.value}">${fmt(d.value, 5)}</b>`));
  if (d.input) body.appendChild(flattenElastic(d, ctx));
}

/** Flatten's elastic view: the input channel's map beside its stretch of the flat vector (the
 * same numbers, row after row); hovering either marks the position and the index it becomes. */
function flattenElastic(d, ctx) {
  const [c0, y0, x0] = d.source, [nc, h, w] = d.input_shape, hw = h * w, first = c0 * hw;
  const map = mapView(d.input, { px: 160, label: chLabel(d.input_layer, c0),
    onHover: (y, x) => show(y * w + x), onClick: (y, x) => show(y * w + x) });
  const strip = mapView({ ...d.input, shape: [hw, 1] }, { px: Math.min(360, Math.max(120, hw * 2)),
    label: `${d.layer}[${first}…${first + hw - 1}]`, onHover: (i) => show(i), onClick: (i) => show(i) });
  const read = el("div", "readout flatten-readout");
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.classList.add("flatten-line");
  const row = el("div", "inout flatten-elastic", [map, el("span", "op", "→"), strip, read]);
  row.prepend(svg);
  const line = document.createElementNS("http://www.w3.org/2000/svg", "path");
  svg.appendChild(line);
  /** Mark local index i (row-major within the channel) on both sides, and join them. */
  function show(i) {
    const y = Math.floor(i / w), x = i % w, index = first + i;
    map.mark([[y, x, 1, 1, "cell"]]);
    strip.mark([[i, 0, 1, 1, "cell"]]);
    fill(read, html`${d.input_layer}[${c0}, ${y}, ${x}] ⟷ ${d.layer}[${index}] = ${c0}·${hw} + ${y}·${w} + ${x}`,
      html` = <b class="num" data-k="flat-value" data-value="${map.value(y, x)}">${fmt(map.value(y, x), 5)}</b>`);
    Object.assign(read.dataset, { index: String(index), c: String(c0), y: String(y), x: String(x) });
    const base = row.getBoundingClientRect(), a = map.canvas.getBoundingClientRect(), b = strip.canvas.getBoundingClientRect();
    if (!base.width) return;
    svg.setAttribute("width", String(base.width));
    svg.setAttribute("height", String(base.height));
    const sx = a.left - base.left + ((x + 0.5) * a.width) / w, sy = a.top - base.top + ((y + 0.5) * a.height) / h;
    const tx = b.left - base.left, ty = b.top - base.top + ((i + 0.5) * b.height) / hw;
    line.setAttribute("d", `M${sx},${sy} C${(sx + tx) / 2},${sy} ${(sx + tx) / 2},${ty} ${tx},${ty}`);
  }
  const pager = el("div", "pager detail-pager");
  const prev = el("button", "", t("detail.previous_channel")), next = el("button", "", t("detail.next_channel"));
  prev.disabled = c0 === 0;
  next.disabled = c0 >= nc - 1;
  prev.onclick = () => ctx.reload({ channel: (c0 - 1) * hw });
  next.onclick = () => ctx.reload({ channel: (c0 + 1) * hw });
  pager.append(prev, el("span", "note", t("detail.channel_of", { channel: c0, n: number(nc) })), next);
  const box = el("section", "flatten-view", [pager, row]);
  requestAnimationFrame(() => show(y0 * w + x0));
  return box;
}

// -- softmax -------------------------------------------------------------------------------
function softmax(body, d) {
  body.appendChild(formulaBox(
    html`p<sub>i</sub> = exp(z<sub>i</sub>) / Σ<sub>j</sub> exp(z<sub>j</sub>) &nbsp; ${t("detail.over_classes", { n: number(d.classes) })}; `,
    html`Σ exp(z<sub>j</sub>) = ${num(d.sum_exp, 5, "sum-exp")}`,
    (d.shift ? html` &nbsp;(${t("detail.shifted", { m: fmt(d.shift, 4) })})` : "")));
  const table = el("table", "softmax-table");
  fill(table, html`<tr><th>${t("detail.class")}</th><th>${t("detail.logit")}</th><th>exp(z${d.shift ? " − m" : ""})</th><th>÷ Σ</th><th>${t("detail.probability")}</th></tr>`);
  const maxP = Math.max(...d.rows.map((r) => r.prob), 1e-9);
  d.rows.forEach((r) => {
    const tr = el("tr", r.index === d.selected ? "selected" : "");
    tr.dataset.index = r.index;
    fill(tr, html`<td>${r.name}</td><td class="num" data-value="${r.logit}">${fmt(r.logit, 4)}</td>`,
      html`<td class="num" data-value="${r.exp}">${fmt(r.exp, 4)}</td><td>÷ ${fmt(d.sum_exp, 4)}</td>`,
      html`<td><span class="pbar"><span style="width:${(100 * r.prob) / maxP}%"></span></span>`,
      html`<span class="num" data-k="prob" data-value="${r.prob}">${(100 * r.prob).toFixed(2)}%</span></td>`);
    table.appendChild(tr);
  });
  if (d.rest) {
    add(table, html`<tr class="rest"><td>${t("detail.other_classes", { n: number(d.rest.count) })}</td><td></td>`,
      html`<td>${fmt(d.rest.exp, 4)}</td><td></td><td>${(100 * d.rest.prob).toFixed(2)}%</td></tr>`);
  }
  body.appendChild(softmaxTerms(d, table));
  body.appendChild(table);
}

/** CNN Explainer's softmax: the denominator written out term by term, and one class's own
 * formula; hovering a class's row (or its bar, or its term) highlights its term in both
 * formulas and its bar. */
function softmaxTerms(d, table) {
  const e = d.shift ? "exp(z − m)" : "exp(z)";
  const terms = d.rows.map((r, i) => [i ? " + " : "",
    html`<span class="term" data-index="${r.index}" data-value="${r.exp}">${fmt(r.exp, 3)}</span>`]);
  const rest = d.rest ? html` + <span class="term rest" title="${t("detail.other_classes", { n: number(d.rest.count) })}">${fmt(d.rest.exp, 3)}</span>` : "";
  const sum = formulaBox(html`Σ ${e} = `, terms, rest, html` = ${fmt(d.sum_exp, 4)}`);
  sum.classList.add("softmax-sum");
  const one = formulaBox();
  one.classList.add("softmax-one");
  const box = el("div", "softmax-terms", [sum, one]);
  const focus = (index) => {
    const r = d.rows.find((row) => row.index === index);
    box.querySelectorAll(".term").forEach((s) => s.classList.toggle("hovered", /** @type {HTMLElement} */ (s).dataset.index === String(index)));
    table.querySelectorAll("tr[data-index]").forEach((tr) => tr.classList.toggle("hovered", /** @type {HTMLElement} */ (tr).dataset.index === String(index)));
    fill(one, html`p<sub>${r.name}</sub> = exp(z<sub>${r.name}</sub>${d.shift ? " − m" : ""}) / Σ = `,
      html`<span class="term hovered" data-index="${r.index}">${fmt(r.exp, 4)}</span> / ${fmt(d.sum_exp, 4)} = `,
      html`<b class="num" data-k="hover-prob" data-value="${r.prob}">${(100 * r.prob).toFixed(2)}%</b>`);
    one.dataset.index = String(index);
  };
  [...table.querySelectorAll("tr[data-index]"), ...sum.querySelectorAll(".term[data-index]")].forEach((n) =>
    n.addEventListener("mouseenter", () => focus(Number(/** @type {HTMLElement} */ (n).dataset.index))));
  focus(d.selected);
  return box;
}

// -- anything else: inputs and output side by side ---------------------------------------
function generic(body, d) {
  if (d.formula) body.appendChild(formulaBox(formulaText(d)));
  const row = el("div", "inout");
  const views = d.inputs.map((i) => mapView(i.map, { px: 130, label: t("detail.input_of", { what: chLabel(i.name, i.channel) }) }));
  const out = mapView(d.output, { px: 130, label: t("detail.output_of", { what: chLabel(d.layer, d.channel) }) });
  const read = el("div", "readout");
  const all = [...views, out];
  const show = (y, x) => {
    all.forEach((v) => v.mark([[y, x, 1, 1, "cell"]]));
    fill(read, `${t("detail.at", { y, x })} ` + views.map((v, i) => `${d.inputs[i].name} = ${fmt(v.value(y, x), 4)}`).join(", ") + " → ",
      el("b", "", fmt(out.value(y, x), 4)));
  };
  all.forEach((v) => v.canvas.addEventListener("mousemove", (ev) => {
    const r = v.canvas.getBoundingClientRect();
    const [h, w] = d.output.shape;
    show(Math.min(h - 1, Math.floor(((ev.clientY - r.top) / r.height) * h)), Math.min(w - 1, Math.floor(((ev.clientX - r.left) / r.width) * w)));
  }));
  views.forEach((v, i) => { row.appendChild(v); if (i < views.length - 1) row.appendChild(el("span", "op", d.op_symbol || ",")); });
  row.append(el("span", "op", "→"), out, read);
  body.appendChild(row);
  if (d.position) show(d.position.y, d.position.x);
}
