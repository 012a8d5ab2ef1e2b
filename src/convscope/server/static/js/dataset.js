// @ts-check
// The dataset view: the current model over a dataset split. Accuracy, per-class accuracy,
// the confusion matrix (a click shows the images behind a cell), the misclassified
// gallery, the "True / Pred" grid, and the embedding scatter of penultimate features.
// Clicking any image opens it in the explorer. Numbers come from /api/models/M/dataset; the
// words from the catalogue's "dataset" section. A language switch redraws the view from the
// answers it holds (nothing is fetched or run again).

import { getJSON } from "./api.js";
import { runJob, progressBar } from "./jobs.js";
import { Scatter, classColor } from "./scatter.js";
import { el, fill, html } from "./dom.js";
import { page } from "./page.js";
import { inkOn, percent as pct } from "./colors.js";
import { t, has, number, say, language, onLanguage } from "./i18n.js";
import { phrase } from "./phrase.js";

const enc = encodeURIComponent;
/** The embedding methods by their names (the same in every language). */
const METHODS = { pca: "PCA", tsne: "t-SNE", umap: "UMAP" };

/**
 * A split's name in the reader's language (test, train, val), else as the server named it.
 * @param {string} split
 */
export function splitName(split) {
  const key = `dataset.split.${split}`;
  return has(key) ? t(key) : split;
}

export class DatasetView {
  constructor(root) {
    this.root = root;
    this.split = "test";
    this.method = "pca";
    /** @type {string | null} the model the view was last started for (tabs.js) */
    this.shownFor = null;
    /** @type {AbortController | null} the pass being followed; a new start abandons it */
    this.passing = null;
    /** @type {AbortController | null} the embedding being followed */
    this.embedding = null;
    /** the answers shown, kept for a redraw: /dataset, the summary, the galleries, the open cell, the embedding */
    this.info = this.summary = this.mistakes = this.random = this.cell = this.emb = null;
    /** @type {import("./jobs.js").ProgressBar | null} the pass's bar, kept across redraws */
    this.progress = null;
    /** @type {import("./jobs.js").ProgressBar | null} the embedding's bar, kept across redraws */
    this.embProgress = null;
    onLanguage(() => this.redraw());
  }

  /** The view again in the language now chosen, from the answers it holds. */
  redraw() {
    if (!this.info) return;
    this.drawBar();
    if (!this.summary || !this.mistakes) return;
    this.drawBody();
    if (this.emb) this.drawScatter(this.emb);
  }

  get model() {
    return page.get("model");
  }

  base() {
    return `/api/models/${enc(this.model)}/dataset/${this.split}`;
  }

  open(image) {
    location.href = `/?model=${enc(this.model)}&image=${enc(image)}`;
  }

  thumb(row, caption, cls = "") {
    const thumb = el("button", `thumb ${cls}`);
    thumb.dataset.image = row.image;
    thumb.title = t("dataset.thumb_title", { row: row.row, index: row.index, true: row.true_name, pred: row.pred_name, confidence: pct(row.confidence) });
    fill(thumb, html`<img loading="lazy" src="${this.base()}/images/${row.row}.png" alt="">`, el("span", "", caption));
    thumb.onclick = () => this.open(row.image);
    return thumb;
  }

  async start() {
    this.passing?.abort();
    this.embedding?.abort();
    const passing = this.passing = new AbortController();
    page.set("dataset", "loading");
    this.info = this.summary = this.mistakes = this.random = this.cell = this.emb = null;
    this.root.replaceChildren();
    this.bar = el("div", "ds-bar");
    this.body = el("div", "ds-body");
    this.root.append(this.bar, this.body);
    try {
      this.info = await getJSON(`/api/models/${enc(this.model)}/dataset`);
    } catch (e) {
      fill(this.bar, el("div", "note", e.message));
      page.set("dataset", "error");
      return;
    }
    this.drawBar();
    try {
      const split = this.split;
      const job = await runJob(`${this.base()}/pass`, this.progress, () => t("dataset.pass", { split: splitName(split) }), passing.signal);
      if (!job) return;
      await this.render();
      page.set("dataset", "ready");
    } catch (e) {
      fill(this.body, el("div", "message error", e.message));
      page.set("dataset", "error");
    }
  }

  /** The split picker and the pass's progress bar (kept across a redraw, so a running pass keeps it). */
  drawBar() {
    const info = this.info;
    const sel = el("select");
    sel.setAttribute("aria-label", t("dataset.split_label"));
    info.splits.forEach((s) => sel.appendChild(new Option(splitName(s), s)));
    sel.value = this.split;
    sel.onchange = () => { this.split = sel.value; this.start(); };
    const label = el("label", "picker",
      phrase("dataset.picker", { model: html`<b>${this.model}</b>`, dataset: html`<b>${info.dataset}</b>`, seed: info.split_seed }));
    label.appendChild(sel);
    this.progress ||= progressBar();  // its words follow a language switch (jobs.progressBar)
    this.bar.replaceChildren(label, this.progress);
  }

  async render() {
    const [s, mistakes, random] = await Promise.all([getJSON(`${this.base()}/summary`),
      getJSON(`${this.base()}/mistakes?limit=48`), getJSON(`${this.base()}/random?count=24&seed=0`)]);
    Object.assign(this, { summary: s, mistakes, random });
    this.drawBody();
    await this.embed(this.method);
  }

  /** Accuracy, per-class bars, confusion, the open cell, the galleries and the embedding's frame. */
  drawBody() {
    const s = this.summary, mistakes = this.mistakes, random = this.random;
    this.body.replaceChildren();
    const top = el("div", "ds-top");
    const head = el("div", "ds-stats");
    fill(head, html`<div class="big" data-value="${s.accuracy}">${pct(s.accuracy)}</div>`,
      el("div", "note", t("dataset.stats", { n: number(s.count), split: splitName(s.split), errors: number(s.errors),
        loss: s.mean_loss.toLocaleString(language(), { minimumFractionDigits: 4, maximumFractionDigits: 4 }) })),
      s.note && el("div", "note", say(s.note)));
    head.appendChild(this.perClass(s));
    top.append(head, this.confusion(s));
    this.cellBox = el("div", "ds-section cell-box");
    this.cellBox.hidden = true;
    this.body.append(top, this.cellBox);
    if (this.cell) this.drawCell(this.cell);
    this.body.appendChild(this.gallery(t("dataset.mistakes", { k: number(mistakes.rows.length), n: number(mistakes.count) }),
      mistakes.rows, (r) => html`${r.true_name} → <b>${r.pred_name}</b> ${pct(r.confidence)}`, "mistakes"));
    this.body.appendChild(this.gallery(t("dataset.random"), random.rows,
      (r) => t("dataset.true_pred", { true: r.true_name, pred: r.pred_name }), "true-pred", (r) => (r.true === r.pred ? "ok" : "wrong")));
    this.body.appendChild(this.embeddingBox());
  }

  perClass(s) {
    const box = el("div", "per-class");
    s.classes.forEach((name, k) => {
      const a = s.per_class_accuracy[k];
      const row = el("div", "pc-row");
      fill(row, html`<span class="pc-name">${name}</span><span class="pc-bar"><span style="width:${100 * (a || 0)}%;background:${classColor(k)}"></span></span>`,
        html`<span class="pc-val" data-value="${a}">${pct(a)}</span>`);
      box.appendChild(row);
    });
    return box;
  }

  confusion(s) {
    const cm = s.confusion;
    const box = el("div", "ds-section confusion-box");
    box.appendChild(el("div", "ds-title", t("dataset.confusion")));
    const table = el("table", "confusion");
    const head = el("tr");
    head.appendChild(el("th", "corner", t("dataset.corner")));
    s.classes.forEach((c) => head.appendChild(el("th", "", c)));
    table.appendChild(head);
    cm.forEach((row, i) => {
      const line = el("tr");
      line.appendChild(el("th", "", s.classes[i]));
      const total = row.reduce((a, b) => a + b, 0) || 1;
      row.forEach((v, j) => {
        const td = el("td", i === j ? "diag" : "");
        td.textContent = number(v);
        td.dataset.true = i;
        td.dataset.pred = j;
        td.dataset.value = v;
        const f = v / total;
        if (v) {
          // blue on the diagonal, red off it, stronger with the row's share, mixed over white
          // (opaque, so the ink can be chosen for contrast against the very colour shown)
          const alpha = 0.15 + 0.85 * f;
          const rgb = (i === j ? [33, 102, 172] : [178, 24, 43]).map((c) => Math.round(255 + alpha * (c - 255)));
          td.style.background = `rgb(${rgb.join(",")})`;
          td.style.color = inkOn(rgb);
        }
        td.title = t("dataset.cell_title", { n: number(v), true: s.classes[i], pred: s.classes[j] });
        if (v) td.onclick = () => this.showCell(i, j);
        line.appendChild(td);
      });
      table.appendChild(line);
    });
    box.appendChild(table);
    return box;
  }

  async showCell(i, j) {
    const d = await getJSON(`${this.base()}/cell?true=${i}&pred=${j}&limit=120`);
    this.cell = { i, j, d };
    this.drawCell(this.cell);
    page.set("cell", `${i},${j}`);
  }

  /** The images behind one confusion cell, the cell outlined. */
  drawCell({ i, j, d }) {
    this.body.querySelectorAll("td.picked").forEach((e) => e.classList.remove("picked"));
    this.body.querySelector(`table.confusion td[data-true="${i}"][data-pred="${j}"]`)?.classList.add("picked");
    const names = this.summary.classes;
    const params = { true: names[i], pred: names[j], n: number(d.count), k: number(d.rows.length) };
    const g = this.gallery(t(d.count > d.rows.length ? "dataset.cell_first" : "dataset.cell", params), d.rows, (r) => pct(r.confidence), "cell");
    this.cellBox.replaceChildren(...g.childNodes);
    this.cellBox.hidden = false;
    this.cellBox.dataset.true = i;
    this.cellBox.dataset.pred = j;
    this.cellBox.dataset.count = d.count;
  }

  /**
   * A titled gallery of thumbnails, one per row; rowCls(row) adds a class to its thumb.
   * @param {string} title
   * @param {any[]} rows
   * @param {(row: any) => import("./dom.js").Content} caption
   * @param {string} cls
   * @param {(row: any) => string} [rowCls]
   */
  gallery(title, rows, caption, cls, rowCls = () => "") {
    const box = el("div", `ds-section gallery-box ${cls}`);
    box.appendChild(el("div", "ds-title", title));
    const g = el("div", "gallery");
    rows.forEach((r) => g.appendChild(this.thumb(r, caption(r), rowCls(r))));
    if (!rows.length) g.appendChild(el("div", "note", t("dataset.none")));
    box.appendChild(g);
    return box;
  }

  embeddingBox() {
    const box = el("div", "ds-section embedding-box");
    const bar = el("div", "ds-title");
    const about = phrase("dataset.embedding", { n: number(this.summary.features), layer: html`<code>${this.summary.layer}</code>` });
    fill(bar, html`<span>${about}</span>`);
    const sel = el("select");
    sel.setAttribute("aria-label", t("dataset.embedding_label"));
    Object.entries(METHODS).forEach(([v, name]) => sel.appendChild(new Option(name, v)));
    sel.value = this.method;
    sel.onchange = () => this.embed(sel.value).catch((e) => { this.embProgress.set(0, 1, e.message); });
    bar.appendChild(sel);
    this.embProgress ||= progressBar();
    bar.appendChild(this.embProgress);
    const legend = el("div", "emb-legend");
    fill(legend, this.summary.classes.map((c, k) => html`<span><i style="background:${classColor(k)}"></i>${c}</span>`),
      html`<span>${t("dataset.correct")}</span><span>${t("dataset.misclassified")}</span>`);
    this.canvas = el("canvas", "scatter");
    this.hoverTip = el("div", "emb-tip");
    this.hoverTip.hidden = true;
    const stage = el("div", "emb-stage");
    stage.append(this.canvas, this.hoverTip);
    box.append(bar, legend, stage);
    return box;
  }

  async embed(method) {
    this.method = method;
    this.embedding?.abort();
    const embedding = this.embedding = new AbortController();
    page.set("embedding", "loading");
    const q = `method=${method}`;
    const job = await runJob(`${this.base()}/embedding?${q}`, this.embProgress, METHODS[method] || method, embedding.signal);
    if (!job) return;
    const e = await getJSON(`${this.base()}/embedding?${q}`);
    this.emb = { ...e, method, seconds: job.seconds };
    this.drawScatter(this.emb);
    page.set("embedding", "ready");
  }

  /** The embedding's points on the canvas, with their hover card and click-through. */
  drawScatter(e) {
    const method = e.method;
    this.embProgress?.set(1, 1, () => t("widgets.done_in", { label: METHODS[method] || method, s: e.seconds.toFixed(1) }));
    const names = this.summary.classes;
    this.scatter = new Scatter(this.canvas, { x: e.x, y: e.y, label: e.label, correct: e.correct }, {
      onHover: (i, ev) => {
        if (i < 0) { this.hoverTip.hidden = true; return; }
        const r = this.canvas.getBoundingClientRect();
        this.hoverTip.hidden = false;
        this.hoverTip.style.left = `${ev.clientX - r.left + 12}px`;
        this.hoverTip.style.top = `${ev.clientY - r.top + 12}px`;
        fill(this.hoverTip, html`<img src="${this.base()}/images/${i}.png" alt=""><div>${t("dataset.tip_true", { name: names[e.label[i]] })}`,
          html`<br>${t("dataset.tip_pred", { name: names[e.pred[i]] })}${e.correct[i] ? "" : " ✕"}<br><span class="note">${t("dataset.tip_row", { row: i })}</span></div>`);
      },
      onClick: (i) => this.open(`${e.image_prefix}${i}`),
    });
    this.scatter.draw();
    this.canvas.dataset.points = String(e.x.length);
    this.canvas.dataset.method = method;
    /** @type {any} */ (window).__convscopeScatter = this.scatter;  // browser tests hover its points
  }
}
