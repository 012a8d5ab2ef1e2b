// @ts-check
// The "Why?" panel: an attribution heatmap over the input for a chosen method, layer and
// class, its faithfulness metrics, and the model-randomisation sanity check. The server
// computes every map, picture and number (routes_explain.py); this module only lays them out,
// in the words of the catalogue's "why" section (a method's label and summary too, by its
// name, else as the server sent them). A language switch redraws the open panel from the
// answers it holds: no job runs again.

import { getJSON, q } from "./api.js";
import { mapValues, num } from "./widgets.js";
import { el, fill, html, byId as $ } from "./dom.js";
import { fmt, percent } from "./colors.js";
import { lineChart } from "./charts.js";
import { Task } from "./task.js";
import { page } from "./page.js";
import { say, t, has, onLanguage } from "./i18n.js";
import { phrase } from "./phrase.js";

/** The method menu's groups, by the server's family names (their titles: why.family.*). */
const FAMILIES = ["cam", "gradient", "perturbation"];
/** @type {[string, (v: number) => string][]} key (its label and help: why.metric.KEY, KEY_help), how to show it */
const METRICS = [
  ["probability", (v) => `${fmt(100 * v, 4)}%`],
  ["deletion_auc", (v) => fmt(v, 4)],
  ["insertion_auc", (v) => fmt(v, 4)],
  ["average_drop", (v) => `${fmt(v, 4)}%`],
  ["increase_in_confidence", (v) => `${fmt(v, 4)}%`],
];

/**
 * A method's label or summary in the reader's language: the catalogue's by the method's name,
 * else the server's own (a method the catalogue does not know yet).
 * @param {{name: string, label: string, summary?: string}} m
 * @param {"label" | "summary"} part
 */
export function methodText(m, part) {
  const key = `why.methods.${m.name}.${part}`;
  return has(key) ? t(key) : m[part] || "";
}

export function mountWhy(getState) {
  const panel = new WhyPanel($("why"), getState);
  $("btn-why").onclick = () => panel.toggle();
  // an open panel follows the input: when the overview is redrawn for another image or model, explain that
  page.on("overview", (state) => { if (state === "ready") panel.follow(); });
  onLanguage(() => panel.redraw());
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
    /** the answers shown (explanation, its metrics, the sanity check), kept for a redraw */
    this.result = this.metricsResult = this.sanityResult = null;
    // made by the first render and kept across redraws (a running job keeps its bar)
    /** @type {HTMLElement | null} */
    this.progress = null;
    /** @type {HTMLElement | null} */
    this.sanityProgress = null;
    /** @type {HTMLElement | null} */
    this.metricsProgress = null;
    /** @type {Task | null} */
    this.explainTask = null;
    /** @type {Task | null} */
    this.sanityTask = null;
    /** @type {Task | null} */
    this.metricsTask = null;
  }

  /** The open panel again in the language now chosen, from the answers it holds. */
  redraw() {
    if (this.root.hidden || !this.options) return;
    this.render();
    if (this.result) this.draw(this.result);
    if (this.metricsResult) this.metricsBox.replaceChildren(this.metricsView(this.metricsResult), this.metricsProgress);
    if (this.sanityResult) this.drawSanity(this.sanityResult);
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
    const sub = phrase("why.sub", { class: html`<b>${o.classes[o.predicted]}</b>` });
    const head = el("header", "detail-head", html`<h2>${t("why.title")}</h2><span class="sub">${sub}</span>`);
    const close = el("button", "close", "×");
    close.title = t("why.close");
    close.onclick = () => this.close();
    head.appendChild(close);
    this.root.appendChild(head);

    const controls = el("div", "why-controls");
    const method = el("select");
    method.id = "why-method";
    for (const family of FAMILIES) {
      const group = el("optgroup");
      group.label = t(`why.family.${family}`);
      o.methods.filter((m) => m.family === family).forEach((m) => {
        const opt = new Option(methodText(m, "label"), m.name);
        opt.title = methodText(m, "summary").replace(/``/g, "");
        group.appendChild(opt);
      });
      if (group.children.length) method.appendChild(group);
    }
    method.value = this.choice.method;
    method.onchange = () => { this.choice.method = method.value; this.syncControls(); this.explain(); };
    const layer = el("select");
    layer.id = "why-layer";
    o.layers.forEach((l) => {
      const name = `${l.name}  ${l.shape.join("×")}`;
      layer.appendChild(new Option(l.name === o.default_layer ? t("why.default_option", { name }) : name, l.name));
    });
    layer.value = this.choice.layer || o.default_layer;
    layer.onchange = () => { this.choice.layer = layer.value === o.default_layer ? null : layer.value; this.explain(); };
    const target = el("select");
    target.id = "why-class";
    o.classes.forEach((c, i) => target.appendChild(new Option(i === o.predicted ? t("why.predicted_option", { name: c }) : c, String(i))));
    target.value = String(this.choice.target ?? o.predicted);
    target.onchange = () => { this.choice.target = Number(target.value); this.explain(); };
    const sanity = el("button", "tool", t("why.sanity_button"));
    sanity.id = "why-sanity";
    sanity.title = t("why.sanity_title");
    sanity.onclick = () => this.sanity();
    const field = (label, input) => el("label", "why-field", [el("span", "", label), input]);
    controls.append(field(t("why.field.method"), method), field(t("why.field.layer"), layer), field(t("why.field.class"), target), sanity);
    this.layerSelect = layer;
    this.methodNote = el("div", "why-summary note");
    this.root.append(controls, this.methodNote);

    // the progress hosts and their tasks outlive a redraw, so a job running across a language switch keeps its bar
    this.progress ||= el("div", "why-progress");
    this.errorBox = el("div", "why-error");
    this.errorBox.hidden = true;
    this.body = el("div", "why-body");
    this.sanityBox = el("div", "why-sanity");
    this.sanityProgress ||= el("div", "why-progress");
    this.root.append(this.progress, this.errorBox, this.body, this.sanityProgress, this.sanityBox);
    this.explainTask ||= new Task(this.progress, "");
    this.sanityTask ||= new Task(this.sanityProgress, "");
    this.syncControls();
  }

  syncControls() {
    const m = this.method;
    this.layerSelect.disabled = !m.uses_layer;
    this.layerSelect.title = m.uses_layer ? t("why.layer_title") : t("why.no_layer_title", { method: methodText(m, "label") });
    this.methodNote.textContent = methodText(m, "summary").replace(/``/g, "");
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
    this.result = this.metricsResult = this.sanityResult = null;
    let r;
    try {
      const method = this.method;
      r = await this.explainTask.run(this.api("/explain", this.params({ metrics: false })), () => methodText(method, "label"));
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
      m = await this.metricsTask.run(this.api("/explain", this.params({ metrics: true })), () => t("why.task_curves"));
    } catch (e) {
      this.metricsBox.appendChild(el("div", "why-error", e.message));
      return setStatus("whymetrics", "error");
    }
    if (m === null) return setStatus("whymetrics", this.metricsTask.state === "cancelled" ? "cancelled" : "waiting");
    this.metricsResult = m;
    this.metricsBox.replaceChildren(this.metricsView(m), this.metricsProgress);
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
    const label = methodText({ name: r.method, label: r.label }, "label");
    const input = img(`/api/models/${encodeURIComponent(s.model)}/images/${encodeURIComponent(r.image)}.png`, t("why.alt_input"));
    const overlay = img(r.overlay, t("why.alt_overlay", { method: label }));
    overlay.className = "why-overlay";
    const heat = img(r.heatmap, t("why.alt_heatmap", { method: label }));
    heat.className = "why-heat";
    const [h, w] = r.map.shape;
    const readout = el("div", "why-readout note", t("why.hover"));
    heat.addEventListener("mousemove", (ev) => {
      const b = heat.getBoundingClientRect();
      const y = Math.min(h - 1, Math.max(0, Math.floor(((ev.clientY - b.top) / b.height) * h)));
      const x = Math.min(w - 1, Math.max(0, Math.floor(((ev.clientX - b.left) / b.width) * w)));
      const v = mapValues(r.map)[y * w + x];
      fill(readout, t("why.value_at", { y, x }), num(v, 4, "map-value"));
    });
    const shape = r.raw_shape.join("×");
    const where = r.layer ? phrase("why.at_layer", { layer: html`<b>${r.layer}</b>`, shape }) : t("why.on_pixels", { shape });
    const scaleKey = `why.scale.${r.scale}`;
    const range = t("why.range", { lo: r.scale === "heat" ? "0" : fmt(r.range[0]), hi: fmt(r.range[1]), scale: has(scaleKey) ? t(scaleKey) : r.scale });
    const maps = el("div", "why-maps");
    maps.append(
      figure("why-in", t("why.caption_input"), input),
      figure("why-ov", phrase("why.caption_overlay", { method: label, class: html`<b>${r.target_name}</b>` }), overlay),
      figure("why-hm", phrase("why.caption_heatmap", { where: html`${where}` }), heat),
    );
    const left = el("div", "why-left");
    left.append(maps, el("div", "why-range note", range), readout);
    this.metricsBox = el("div", "why-metrics");
    this.metricsBox.appendChild(this.metricsView(r));
    this.metricsProgress ||= el("div", "why-progress");
    this.metricsBox.appendChild(this.metricsProgress);
    this.metricsTask ||= new Task(this.metricsProgress, "");
    this.body.append(left, this.metricsBox);
  }

  metricsView(r) {
    const box = el("div", "why-metrics-view");
    const table = el("table", "why-table");
    const values = { probability: r.probability, ...(r.metrics || {}) };
    for (const [k, show] of METRICS) {
      if (values[k] === undefined) continue;
      const tr = el("tr");
      tr.title = t(`why.metric.${k}_help`);
      fill(tr, html`<th>${t(`why.metric.${k}`)}</th><td><span class="num" data-k="${k}" data-value="${values[k]}">${show(values[k])}</span></td>`);
      table.appendChild(tr);
    }
    box.appendChild(table);
    if (r.metrics) {
      const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
      svg.classList.add("chart", "why-curves");
      const m = r.metrics;
      lineChart(svg, [
        { name: t("why.deletion"), color: "#b2182b", xs: m.fractions, ys: m.deletion },
        { name: t("why.insertion"), color: "#2166ac", xs: m.fractions, ys: m.insertion },
      ], { title: t("why.curves_title", { class: r.target_name }), xLabel: t("why.curves_x"), xName: (x) => percent(x, 0), ymin: 0, ymax: 1 });
      box.appendChild(svg);
      box.appendChild(el("p", "why-reading", say(m.reading_i18n || m.reading)));
    }
    return box;
  }

  async sanity() {
    setStatus("sanity", "running");
    this.sanityBox.replaceChildren();
    let r;
    try {
      r = await this.sanityTask.run(this.api("/sanity", this.params()), () => t("why.task_sanity"));
    } catch (e) {
      this.sanityBox.appendChild(el("div", "why-error", e.message));
      return setStatus("sanity", "error");
    }
    if (r === null) return setStatus("sanity", this.sanityTask.state === "cancelled" ? "cancelled" : "closed");
    this.sanityResult = r;
    this.drawSanity(r);
    setStatus("sanity", "ready");
  }

  drawSanity(r) {
    const box = this.sanityBox;
    box.replaceChildren(el("h3", "", html`${t("why.sanity_head")} <span class="hint">${t("why.sanity_hint")}</span>`));
    const table = el("table", "why-table sanity-table");
    const head = r.methods.map((m) => html`<th>${t("why.spearman", { method: m })}</th><th>${t("why.ssim", { method: m })}</th>`);
    fill(table, html`<thead><tr><th>${t("why.step")}</th><th>${t("why.randomised_to")}</th>${head}</tr></thead>`);
    const tb = el("tbody");
    r.steps.forEach((step, i) => {
      const cells = r.methods.map((m) => [r.spearman[m][i], r.ssim[m][i]]
        .map((v, j) => html`<td class="n"><span class="num" data-k="${j ? "ssim" : "spearman"}" data-value="${v}">${v === null ? "–" : fmt(v, 3)}</span></td>`));
      // step 0 is the model as trained (the server's "(original)"), the others the layer randomised down to
      tb.appendChild(el("tr", "", html`<td class="n">${i}</td><td>${i ? step : t("why.original")}</td>${cells}`));
    });
    table.appendChild(tb);
    const fig = Object.assign(el("img", "sanity-figure"), { src: r.figure, alt: t("why.sanity_alt") });
    // the figure numbers its steps as the table does and draws no words: its caption is here
    const figure = el("figure", "sanity-figure-box");
    figure.append(fig, el("figcaption", "hint", t("why.sanity_caption")));
    const row = el("div", "sanity-row");
    row.append(table, figure);
    const verdicts = el("ul", "sanity-verdicts");
    for (const v of r.verdicts) {
      verdicts.appendChild(el("li", v.passed ? "pass" : "fail", phrase("why.verdict", { method: html`<b>${v.method}</b>`, reason: say(v.reason_i18n || v.reason) })));
    }
    box.append(row, verdicts);
  }
}
