// @ts-check
// The "Why?" panel: an attribution heatmap over the input for a chosen method, layer and
// class, its faithfulness metrics, and the model-randomisation sanity check. The server
// computes every map, picture and number (routes_explain.py); this module only lays them out.

import { getJSON, q } from "./api.js";
import { mapValues, num } from "./widgets.js";
import { el, fill, html, byId as $ } from "./dom.js";
import { fmt } from "./colors.js";
import { lineChart } from "./charts.js";
import { Task } from "./task.js";
import { page } from "./page.js";

const FAMILIES = { cam: "CAM family (a layer's feature maps)", gradient: "gradients of the input", perturbation: "perturbation" };
/** @type {[string, string, string, (v: number) => string][]} key, label, help, how to show it */
const METRICS = [
  ["probability", "class probability", "the model's softmax output for the explained class", (v) => `${fmt(100 * v, 4)}%`],
  ["deletion_auc", "deletion AUC ↓", "area under the class probability as the most important pixels are removed first (Petsiuk et al. 2018): lower is better", (v) => fmt(v, 4)],
  ["insertion_auc", "insertion AUC ↑", "area under the class probability as the most important pixels are revealed on a blurred copy first: higher is better", (v) => fmt(v, 4)],
  ["average_drop", "average drop ↓", "max(0, Y − O) / Y in percent, O: the probability for the input times the map scaled to [0, 1] (Chattopadhay et al. 2018): lower is better", (v) => `${fmt(v, 4)}%`],
  ["increase_in_confidence", "increase in confidence ↑", "percent of images whose probability rises when only the map's part of the input is kept", (v) => `${fmt(v, 4)}%`],
];

export function mountWhy(getState) {
  const panel = new WhyPanel($("why"), getState);
  $("btn-why").onclick = () => panel.toggle();
  // an open panel follows the input: when the overview is redrawn for another image or model, explain that
  page.on("overview", (state) => { if (state === "ready") panel.follow(); });
  return panel;
}

/**
 * @param {"why" | "whymetrics" | "sanity"} key
 * @param {string} value
 */
const setStatus = (key, value) => page.set(key, value);

class WhyPanel {
  constructor(root, getState) {
    this.root = root;
    this.getState = getState;
    this.key = null;
    this.model = null;
    this.choice = { method: null, layer: null, target: null };
  }

  api(path, params) {
    return `/api/models/${encodeURIComponent(this.getState().model)}${path}?${q(params)}`;
  }

  async toggle() {
    if (!this.root.hidden) return this.close();
    this.root.hidden = false;
    await this.follow(true);
    this.root.scrollIntoView({ block: "nearest", behavior: "instant" });
  }

  close() {
    this.root.hidden = true;
    this.explainTask?.abandon();
    this.metricsTask?.abandon();
    this.sanityTask?.abandon();
    this.key = null;
    setStatus("why", "closed");
  }

  /** (Re)load the menus for the current model and image, then explain with the current choice. */
  async follow(force = false) {
    if (this.root.hidden) return;
    const s = this.getState();
    const key = `${s.model}|${s.image}`;
    if (!force && key === this.key) return;
    this.key = key;
    setStatus("why", "loading");
    try {
      this.options = await getJSON(this.api("/explain/options", { image: s.image }));
    } catch (e) {
      return this.fail(e);
    }
    if (this.model !== s.model) this.choice.layer = null;
    this.model = s.model;
    this.choice.target = null;  // a new input: explain its predicted class
    this.choice.method = this.choice.method || this.options.default_method;
    this.render();
    await this.explain();
  }

  fail(e) {
    if (!this.errorBox || !this.root.contains(this.errorBox)) {
      this.errorBox = el("div", "why-error");
      this.root.replaceChildren(this.errorBox);
    }
    this.errorBox.textContent = e.message;
    this.errorBox.hidden = false;
    setStatus("why", "error");
  }

  get method() {
    return this.options.methods.find((m) => m.name === this.choice.method) || this.options.methods[0];
  }

  render() {
    const o = this.options;
    this.root.replaceChildren();
    const head = el("header", "detail-head", html`<h2>Why?</h2><span class="sub">which parts of the input made the model decide · predicted <b>${o.classes[o.predicted]}</b></span>`);
    const close = el("button", "close", "×");
    close.title = "close";
    close.onclick = () => this.close();
    head.appendChild(close);
    this.root.appendChild(head);

    const controls = el("div", "why-controls");
    const method = el("select");
    method.id = "why-method";
    for (const [family, title] of Object.entries(FAMILIES)) {
      const group = el("optgroup");
      group.label = title;
      o.methods.filter((m) => m.family === family).forEach((m) => {
        const opt = new Option(m.label, m.name);
        opt.title = m.summary;
        group.appendChild(opt);
      });
      if (group.children.length) method.appendChild(group);
    }
    method.value = this.choice.method;
    method.onchange = () => { this.choice.method = method.value; this.syncControls(); this.explain(); };
    const layer = el("select");
    layer.id = "why-layer";
    o.layers.forEach((l) => layer.appendChild(new Option(`${l.name}  ${l.shape.join("×")}${l.name === o.default_layer ? "  (default)" : ""}`, l.name)));
    layer.value = this.choice.layer || o.default_layer;
    layer.onchange = () => { this.choice.layer = layer.value === o.default_layer ? null : layer.value; this.explain(); };
    const target = el("select");
    target.id = "why-class";
    o.classes.forEach((c, i) => target.appendChild(new Option(`${c}${i === o.predicted ? "  (predicted)" : ""}`, String(i))));
    target.value = String(this.choice.target ?? o.predicted);
    target.onchange = () => { this.choice.target = Number(target.value); this.explain(); };
    const sanity = el("button", "tool", "sanity check");
    sanity.id = "why-sanity";
    sanity.title = "randomise the model's layers from the output down and see whether the map changes (Adebayo et al. 2018)";
    sanity.onclick = () => this.sanity();
    const field = (label, input) => el("label", "why-field", [el("span", "", label), input]);
    controls.append(field("method", method), field("layer", layer), field("class", target), sanity);
    this.layerSelect = layer;
    this.methodNote = el("div", "why-summary note");
    this.root.append(controls, this.methodNote);

    this.progress = el("div", "why-progress");
    this.errorBox = el("div", "why-error");
    this.errorBox.hidden = true;
    this.body = el("div", "why-body");
    this.sanityBox = el("div", "why-sanity");
    this.sanityProgress = el("div", "why-progress");
    this.root.append(this.progress, this.errorBox, this.body, this.sanityProgress, this.sanityBox);
    this.explainTask = new Task(this.progress, "explaining");
    this.sanityTask = new Task(this.sanityProgress, "sanity check");
    this.syncControls();
  }

  syncControls() {
    const m = this.method;
    this.layerSelect.disabled = !m.uses_layer;
    this.layerSelect.title = m.uses_layer ? "the layer whose feature maps the method weighs" : `${m.label} explains the input pixels directly: no layer`;
    this.methodNote.textContent = m.summary.replace(/``/g, "");
  }

  params(more = {}) {
    const m = this.method;
    return { image: this.getState().image, method: m.name, layer: m.uses_layer ? this.choice.layer : null, target: this.choice.target, ...more };
  }

  /** The heatmap first (quick), then its metrics (dozens of forward passes) as a second job. */
  async explain() {
    setStatus("why", "loading");
    setStatus("whymetrics", "waiting");
    this.errorBox.hidden = true;
    this.metricsTask?.abandon();
    this.sanityTask.abandon();
    this.sanityBox.replaceChildren();
    let r;
    try {
      r = await this.explainTask.run(this.api("/explain", this.params({ metrics: false })), `${this.method.label}`);
    } catch (e) {
      return this.fail(e);
    }
    if (r === null) {
      if (this.explainTask.state === "cancelled") setStatus("why", "cancelled");
      return;
    }
    this.draw(r);
    setStatus("why", "ready");
    await this.metrics();
  }

  async metrics() {
    setStatus("whymetrics", "running");
    let m;
    try {
      m = await this.metricsTask.run(this.api("/explain", this.params({ metrics: true })), "deletion / insertion curves");
    } catch (e) {
      this.metricsBox.appendChild(el("div", "why-error", e.message));
      return setStatus("whymetrics", "error");
    }
    if (m === null) return setStatus("whymetrics", this.metricsTask.state === "cancelled" ? "cancelled" : "waiting");
    this.metricsBox.replaceChildren(this.metricsView(m));
    setStatus("whymetrics", "ready");
  }

  draw(r) {
    this.result = r;
    this.body.replaceChildren();
    const s = this.getState();
    const figure = (cls, caption, child) => {
      const f = el("figure", `why-figure ${cls}`);
      f.appendChild(child);
      f.appendChild(el("figcaption", "", caption));
      return f;
    };
    const img = (src, alt) => Object.assign(el("img"), { src, alt });
    const input = img(`/api/models/${encodeURIComponent(s.model)}/images/${encodeURIComponent(r.image)}.png`, "the input");
    const overlay = img(r.overlay, `${r.label} over the input`);
    overlay.className = "why-overlay";
    const heat = img(r.heatmap, `${r.label} heatmap`);
    heat.className = "why-heat";
    const [h, w] = r.map.shape;
    const readout = el("div", "why-readout note", "hover the heatmap for values");
    heat.addEventListener("mousemove", (ev) => {
      const b = heat.getBoundingClientRect();
      const y = Math.min(h - 1, Math.max(0, Math.floor(((ev.clientY - b.top) / b.height) * h)));
      const x = Math.min(w - 1, Math.max(0, Math.floor(((ev.clientX - b.left) / b.width) * w)));
      const v = mapValues(r.map)[y * w + x];
      fill(readout, `value at (${y}, ${x}): `, num(v, 4, "map-value"));
    });
    const where = r.layer ? html`at <b>${r.layer}</b> (${r.raw_shape.join("×")} map, upsampled)` : `on the input pixels (${r.raw_shape.join("×")})`;
    const range = `colours: ${r.scale === "heat" ? "0" : fmt(r.range[0])} → ${fmt(r.range[1])} (${r.scale}, the top clipped at the 99.5th percentile of |map|)`;
    const maps = el("div", "why-maps");
    maps.append(
      figure("why-in", "input", input),
      figure("why-ov", html`${r.label} for class <b>${r.target_name}</b>`, overlay),
      figure("why-hm", html`heatmap ${where}`, heat),
    );
    const left = el("div", "why-left");
    left.append(maps, el("div", "why-range note", range), readout);
    this.metricsBox = el("div", "why-metrics");
    this.metricsBox.appendChild(this.metricsView(r));
    const progress = el("div", "why-progress");
    this.metricsBox.appendChild(progress);
    this.metricsTask = new Task(progress, "metrics");
    this.body.append(left, this.metricsBox);
  }

  metricsView(r) {
    const box = el("div", "why-metrics-view");
    const t = el("table", "why-table");
    const values = { probability: r.probability, ...(r.metrics || {}) };
    for (const [k, label, help, show] of METRICS) {
      if (values[k] === undefined) continue;
      const tr = el("tr");
      tr.title = help;
      fill(tr, html`<th>${label}</th><td><span class="num" data-k="${k}" data-value="${values[k]}">${show(values[k])}</span></td>`);
      t.appendChild(tr);
    }
    box.appendChild(t);
    if (r.metrics) {
      const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
      svg.classList.add("chart", "why-curves");
      const m = r.metrics;
      lineChart(svg, [
        { name: "deletion", color: "#b2182b", xs: m.fractions, ys: m.deletion },
        { name: "insertion", color: "#2166ac", xs: m.fractions, ys: m.insertion },
      ], { title: `probability of “${r.target_name}” as pixels are removed / revealed`, xLabel: "fraction of pixels, most important first", ymin: 0, ymax: 1 });
      box.appendChild(svg);
      box.appendChild(el("p", "why-reading", m.reading));
    }
    return box;
  }

  async sanity() {
    setStatus("sanity", "running");
    this.sanityBox.replaceChildren();
    let r;
    try {
      r = await this.sanityTask.run(this.api("/sanity", this.params()), "sanity check");
    } catch (e) {
      this.sanityBox.appendChild(el("div", "why-error", e.message));
      return setStatus("sanity", "error");
    }
    if (r === null) return setStatus("sanity", this.sanityTask.state === "cancelled" ? "cancelled" : "closed");
    this.drawSanity(r);
    setStatus("sanity", "ready");
  }

  drawSanity(r) {
    const box = this.sanityBox;
    const hint = "the layers are re-initialised from the output down, one block per step; " +
      "a map that explains the model should stop resembling the original (values near 0)";
    box.replaceChildren(el("h3", "", html`Sanity check: cascading randomisation <span class="hint">${hint}</span>`));
    const t = el("table", "why-table sanity-table");
    const head = r.methods.map((m) => html`<th>${m}: Spearman</th><th>${m}: SSIM</th>`);
    fill(t, html`<thead><tr><th>step</th><th>randomised down to</th>${head}</tr></thead>`);
    const tb = el("tbody");
    r.steps.forEach((step, i) => {
      const cells = r.methods.map((m) => [r.spearman[m][i], r.ssim[m][i]]
        .map((v, j) => html`<td class="n"><span class="num" data-k="${j ? "ssim" : "spearman"}" data-value="${v}">${v === null ? "–" : fmt(v, 3)}</span></td>`));
      tb.appendChild(el("tr", "", html`<td class="n">${i}</td><td>${step}</td>${cells}`));
    });
    t.appendChild(tb);
    const fig = Object.assign(el("img", "sanity-figure"), { src: r.figure, alt: "sanity check figure" });
    const row = el("div", "sanity-row");
    row.append(t, fig);
    const verdicts = el("ul", "sanity-verdicts");
    for (const v of r.verdicts) {
      verdicts.appendChild(el("li", v.passed ? "pass" : "fail", html`<b>${v.method}</b>: ${v.reason}`));
    }
    box.append(row, verdicts);
  }
}
