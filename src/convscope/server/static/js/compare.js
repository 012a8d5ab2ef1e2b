// @ts-check
// The compare mode: two forward passes side by side. A is the picked model and image;
// B is another sample through the same model ("two images": where do the two inputs
// part?) or the same image through another model ("two models", layers matched by
// name). The server computes every number (routes_compare.py): the per-layer distance
// curve, and per layer a strip of A's maps, B's maps and their difference (a diverging
// scale, white = equal); A and B share one colour range. Attributions: both heatmaps on
// one scale. Mounted from index.html; follows the picked model and image in the store.
// Words from the catalogue's "compare" section; a language switch redraws the open panel
// from the answers it holds (no request again).

import { getJSON, getMany, q, pageEntry } from "./api.js";
import { decodeArray } from "./binary.js";
import { lineChart } from "./charts.js";
import { fmt, legend, paint, scaleFor } from "./colors.js";
import { el, fill, html, byId as $ } from "./dom.js";
import { page } from "./page.js";
import { t, say, onLanguage } from "./i18n.js";
import { phrase } from "./phrase.js";
import { methodText } from "./why.js";
import { kindWord } from "./overview.js";

const MAX_CHANNELS = 16;  // maps per strip row
const SVGNS = "http://www.w3.org/2000/svg";
/** The attribution methods offered (server names; their labels come from why.methods.*). */
const METHODS = ["gradcam", "saliency", "integratedgradients", "occlusion"];

/**
 * One compared layer as the server sends it.
 * @typedef {{name: string, kind: string, shape: number[], relative_l2: number | null, cosine: number | null,
 *   max_abs: number | null, range: {min: number, max: number}, diff: {min: number, max: number}}} Row
 */

/** @param {string} value */
const setStatus = (value) => page.set("compare", value);

class ComparePanel {
  /** @param {HTMLElement} root */
  constructor(root) {
    this.root = root;
    /** @type {"images" | "models"} */
    this.mode = "images";
    /** @type {string | null} B's image (two images) or B's model (two models) */
    this.b = null;
    this.diffOnly = false;
    this.key = null;
    /** the answers shown, kept for a redraw: the comparison, its strips' arrays, the attributions */
    this.comparison = this.stripData = this.explained = null;
    this.method = METHODS[0];
  }

  /** The open panel again in the language now chosen, from the answers it holds. */
  redraw() {
    if (this.root.hidden || !this.comparison) return;
    this.draw(this.comparison);
    if (this.stripData) this.drawStrips(this.stripData);
    if (this.explained) this.drawExplained(this.explained);
  }

  async toggle() {
    if (!this.root.hidden) return this.close();
    this.root.hidden = false;
    await this.follow(true);
    this.root.scrollIntoView({ block: "nearest", behavior: "instant" });
  }

  close() {
    this.root.hidden = true;
    this.key = null;
    setStatus("closed");
  }

  /** A's side as the page has it, and B's as this panel chose it. */
  sides() {
    const model = page.get("model"), image = page.get("image");
    return this.mode === "images" ? { model, image, image_b: this.b } : { model, image, model_b: this.b };
  }

  /** Redraw when the picked model or image changed (or when forced). */
  async follow(force = false) {
    if (this.root.hidden) return;
    const key = `${page.get("model")}|${page.get("image")}|${this.mode}|${this.b}`;
    if (!force && key === this.key) return;
    this.key = key;
    setStatus("loading");
    try {
      await this.choices();
      this.key = `${page.get("model")}|${page.get("image")}|${this.mode}|${this.b}`;
      const c = await getJSON(`/api/compare?${q(this.sides())}`);
      this.comparison = c;
      this.stripData = this.explained = null;
      this.draw(c);
      await this.strips(c);
      setStatus("ready");
    } catch (e) {
      this.fail(e);
    }
  }

  /** @param {any} e */
  fail(e) {
    this.root.append(el("div", "compare-error", e.message));
    setStatus("error");
  }

  /** B's menu: the model's other samples, or the server's other models. */
  async choices() {
    const model = page.get("model"), image = page.get("image");
    const [info, list] = await Promise.all([getJSON(`/api/models/${encodeURIComponent(model)}`), getJSON("/api/models")]);
    const others = list.models.map((m) => m.name).filter((n) => n !== model);
    if (this.mode === "models" && !others.length) this.mode = "images";
    const options = this.mode === "images"
      ? info.samples.map((s) => [s.id, s.label || s.id])
      : others.map((n) => [n, n]);
    const ids = options.map((o) => o[0]);
    if (!ids.includes(this.b) || (this.mode === "images" && this.b === image)) {
      const next = ids.indexOf(image) + 1;
      this.b = this.mode === "images" ? ids[next % ids.length] : ids[0];
    }
    this.options = options;
    this.others = others;
  }

  /** The head (controls) and the distance curve. */
  draw(c) {
    const modeSel = el("select", "compare-mode");
    modeSel.setAttribute("aria-label", t("compare.mode_label"));
    modeSel.append(new Option(t("compare.mode_images"), "images"), new Option(t("compare.mode_models"), "models"));
    /** @type {HTMLOptionElement} */ (modeSel.options[1]).disabled = !this.others.length;
    modeSel.value = this.mode;
    modeSel.onchange = () => { this.mode = /** @type {"images" | "models"} */ (modeSel.value); this.b = null; this.follow(true); };
    const bSel = el("select", "compare-b");
    bSel.setAttribute("aria-label", t("compare.b_label"));
    for (const [value, label] of this.options) bSel.append(new Option(label, value));
    bSel.value = this.b || "";
    bSel.onchange = () => { this.b = bSel.value; this.follow(true); };
    const only = el("label", "compare-only");
    const box = el("input");
    box.type = "checkbox";
    box.checked = this.diffOnly;
    box.onchange = () => { this.diffOnly = box.checked; this.root.classList.toggle("diff-only", box.checked); };
    only.append(box, ` ${t("compare.diff_only")}`);
    const close = el("button", "close", "×");
    close.title = t("compare.close");
    close.onclick = () => this.close();
    const head = el("div", "detail-head");
    head.append(el("h2", "", t("compare.title")), el("span", "sub", phrase("compare.sides", { a: html`<b>${c.a}</b>` })), bSel, modeSel, only, close);

    const svg = /** @type {SVGElement} */ (document.createElementNS(SVGNS, "svg"));
    svg.classList.add("chart", "compare-curve");
    /** @type {Row[]} */
    const rows = c.layers;
    const xs = rows.map((_, i) => i);
    const cos = rows.map((r) => r.cosine);
    lineChart(svg, [
      { name: t("compare.relative_l2"), color: "#b2182b", xs, ys: rows.map((r) => r.relative_l2), key: "relative_l2" },
      { name: t("compare.cosine"), color: "#2166ac", dash: "5 4", xs, ys: cos, key: "cosine" },
    ], { title: t("compare.curve_title", { a: c.a, b: c.b }), xLabel: t("compare.curve_x"),
      ymin: Math.min(0, ...cos.filter((v) => v !== null)), xName: (x) => rows[x].name });
    const missing = c.mismatched.length
      ? el("div", "compare-mismatched", [t("compare.mismatched", { n: c.mismatched.length }),
        c.mismatched.map((m) => html`<span class="mm" data-layer="${m.name}">${m.name} (${say(m.reason_i18n || m.reason)})</span> `)])
      : null;
    this.why = el("div", "compare-why");
    this.body = el("div", "compare-strips");
    fill(this.root, head, el("div", "compare-top", [svg, this.whyControls()]), missing, this.body);
    this.root.classList.toggle("diff-only", this.diffOnly);
  }

  /** The attribution controls: a method menu and a button that explains both sides. */
  whyControls() {
    const sel = el("select", "compare-method");
    sel.setAttribute("aria-label", t("compare.method_label"));
    for (const m of METHODS) sel.append(new Option(methodText({ name: m, label: m }, "label"), m));
    sel.value = this.method;
    sel.onchange = () => { this.method = sel.value; };
    const go = el("button", "tool compare-explain", t("compare.explain"));
    go.onclick = () => this.explain(sel.value);
    const box = el("div", "compare-side");
    box.append(el("h3", "", t("compare.explain_head")), sel, go, this.why);
    return box;
  }

  /** @param {string} method */
  async explain(method) {
    page.set("comparewhy", "loading");
    try {
      const r = await getJSON(`/api/compare/explain?${q({ ...this.sides(), method })}`);
      this.explained = r;
      this.drawExplained(r);
      page.set("comparewhy", "ready");
    } catch (e) {
      fill(this.why, el("div", "compare-error", e.message));
      page.set("comparewhy", "error");
    }
  }

  /** Both sides' attributions and their difference, on one scale. */
  drawExplained(r) {
    const img = (src, label) => el("figure", "", [Object.assign(el("img"), { src, alt: label }), el("figcaption", "", label)]);
    const method = methodText({ name: r.method, label: r.method }, "label");
    fill(this.why, img(r.overlays.a, r.labels[0]), img(r.overlays.b, r.labels[1]), img(r.diff, `${r.labels[0]} − ${r.labels[1]}`),
      el("div", "note", t("compare.explain_note", { method, l2: fmt(r.relative_l2), cosine: fmt(r.cosine), top: fmt(r.top) })));
  }

  /** Per layer a strip: A's maps, B's maps, a - b; every range from the server. */
  async strips(c) {
    const s = this.sides();
    /** @type {Row[]} */
    const rows = c.layers.filter((r) => r.shape.length === 4 || r.shape.length === 2);
    const pages = rows.map((r) => pageEntry(r.name, 0, MAX_CHANNELS, "float32")).join("|");
    const side = (model, image) => getMany(`/api/models/${encodeURIComponent(model)}/activations?${q({ image, pages })}`);
    const [a, b, d] = await Promise.all([
      side(c.models.a, c.images.a), side(c.models.b, c.images.b),
      Promise.all(rows.map((r) => fetch(`/api/compare/diff?${q({ ...s, layer: r.name, count: MAX_CHANNELS })}`)
        .then((res) => (res.ok ? res.arrayBuffer() : Promise.reject(new Error(t("compare.diff_failed", { status: res.status, layer: r.name })))))
        .then(decodeArray))),
    ]);
    const inputChannels = rows[0] && rows[0].kind === "input" ? rows[0].shape[1] : 3;
    this.stripData = { c, rows, a, b, d, inputChannels };
    this.drawStrips(this.stripData);
  }

  /** @param {{c: any, rows: Row[], a: any[], b: any[], d: any[], inputChannels: number}} s */
  drawStrips({ c, rows, a, b, d, inputChannels }) {
    this.body.replaceChildren(...rows.map((r, i) => strip(r, c, [a[i], b[i], d[i]], inputChannels)));
  }
}

/**
 * One layer's three rows of maps.
 * @param {Row} r
 * @param {any} c the comparison
 * @param {import("./binary.js").DecodedArray[]} arrays A's, B's and the difference's page
 * @param {number} inputChannels
 */
function strip(r, c, arrays, inputChannels) {
  const box = el("div", "compare-strip");
  box.dataset.layer = r.name;
  const dims = r.shape.slice(1);
  const [n, h, w] = dims.length === 3 ? dims : [1, 1, dims[0]];
  const shown = Math.min(n, MAX_CHANNELS);
  box.append(el("div", "strip-head", html`<b>${r.name}</b> <span class="sub">${kindWord(r.kind)} · ${dims.join("×")}${shown < n ? ` · ${t("compare.first", { n: shown })}` : ""}</span>
    <span class="num" data-k="relative_l2" data-value="${r.relative_l2}">${t("compare.strip_l2", { v: fmt(r.relative_l2) })}</span>
    <span class="num" data-k="cosine" data-value="${r.cosine}">${t("compare.strip_cos", { v: fmt(r.cosine) })}</span>`));
  const sides = [[c.a, arrays[0], r.range, "a"], [c.b, arrays[1], r.range, "b"], [`${c.a} − ${c.b}`, arrays[2], r.diff, "diff"]];
  for (const [label, arr, range, role] of sides) {
    const line = el("div", `strip-row ${role}`);
    line.append(el("span", "strip-label", label));
    for (let k = 0; k < shown; k++) {
      const canvas = el("canvas", dims.length === 3 ? "cmap" : "cmap vec");
      const scale = role === "diff" ? "diverging" : scaleFor(r, k, inputChannels);
      paint(canvas, arr.data, h, w, scale, range.min, range.max, k * h * w);
      canvas.dataset.channel = String(k);
      line.append(canvas);
    }
    const scale = role === "diff" ? "diverging" : scaleFor(r, 0, inputChannels);
    if (role !== "a") line.append(legend(scale, range.min, range.max, (v) => fmt(v)));
    box.append(line);
  }
  return box;
}

const panel = new ComparePanel($("compare"));
$("btn-compare").onclick = () => panel.toggle();
// an open panel follows the picked input: when the overview is redrawn for another image or model
page.on("overview", (state) => { if (state === "ready") panel.follow(); });
onLanguage(() => panel.redraw());
