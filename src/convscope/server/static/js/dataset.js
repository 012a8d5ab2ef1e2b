// @ts-check
// The dataset view: the current model over a dataset split. Accuracy, per-class accuracy,
// the confusion matrix (a click shows the images behind a cell), the misclassified
// gallery, the "True / Pred" grid, and the embedding scatter of penultimate features.
// Clicking any image opens it in the explorer. Numbers come from /api/models/M/dataset.

import { getJSON } from "./api.js";
import { runJob, progressBar } from "./jobs.js";
import { Scatter, classColor } from "./scatter.js";
import { el, fill, html } from "./dom.js";
import { page } from "./page.js";
import { inkOn } from "./colors.js";

const enc = encodeURIComponent;
const pct = (v) => (v === null || v === undefined ? "–" : `${(100 * v).toFixed(1)}%`);

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
    const t = el("button", `thumb ${cls}`);
    t.dataset.image = row.image;
    t.title = `row ${row.row} (dataset index ${row.index}): true ${row.true_name}, predicted ${row.pred_name} ` +
      `(${pct(row.confidence)}); click to open it in the explorer`;
    fill(t, html`<img loading="lazy" src="${this.base()}/images/${row.row}.png" alt="">`, el("span", "", caption));
    t.onclick = () => this.open(row.image);
    return t;
  }

  async start() {
    this.passing?.abort();
    this.embedding?.abort();
    const passing = this.passing = new AbortController();
    page.set("dataset", "loading");
    this.root.replaceChildren();
    const bar = el("div", "ds-bar");
    this.root.appendChild(bar);
    let info;
    try {
      info = await getJSON(`/api/models/${enc(this.model)}/dataset`);
    } catch (e) {
      fill(bar, el("div", "note", e.message));
      page.set("dataset", "error");
      return;
    }
    const sel = el("select");
    sel.setAttribute("aria-label", "split");
    info.splits.forEach((s) => sel.appendChild(new Option(s, s)));
    sel.value = this.split;
    sel.onchange = () => { this.split = sel.value; this.start(); };
    const label = el("label", "picker", html`<b>${this.model}</b> on <b>${info.dataset}</b> (split seed ${info.split_seed}) · split `);
    label.appendChild(sel);
    this.progress = progressBar();
    bar.append(label, this.progress);
    this.body = el("div", "ds-body");
    this.root.appendChild(this.body);
    try {
      if (!await runJob(`${this.base()}/pass`, this.progress, `pass over ${this.split}`, passing.signal)) return;
      await this.render();
      page.set("dataset", "ready");
    } catch (e) {
      fill(this.body, el("div", "message error", e.message));
      page.set("dataset", "error");
    }
  }

  async render() {
    const s = await getJSON(`${this.base()}/summary`);
    this.summary = s;
    this.body.replaceChildren();
    const top = el("div", "ds-top");
    const head = el("div", "ds-stats");
    fill(head, html`<div class="big" data-value="${s.accuracy}">${pct(s.accuracy)}</div>`,
      el("div", "note", `accuracy on ${s.count.toLocaleString()} ${s.split} images · ${s.errors} mistakes · ` +
        `mean loss ${s.mean_loss.toFixed(4)}`), s.note && el("div", "note", s.note));
    head.appendChild(this.perClass(s));
    top.append(head, this.confusion(s));
    this.cellBox = el("div", "ds-section cell-box");
    this.cellBox.hidden = true;
    this.body.append(top, this.cellBox);
    const [mistakes, random] = await Promise.all([
      getJSON(`${this.base()}/mistakes?limit=48`), getJSON(`${this.base()}/random?count=24&seed=0`)]);
    this.body.appendChild(this.gallery(`misclassified: the ${mistakes.rows.length} most confident of ${mistakes.count} mistakes`,
      mistakes.rows, (r) => html`${r.true_name} → <b>${r.pred_name}</b> ${pct(r.confidence)}`, "mistakes"));
    this.body.appendChild(this.gallery("True / Pred: random images (red: wrong)", random.rows,
      (r) => `T ${r.true_name} / P ${r.pred_name}`, "true-pred", (r) => (r.true === r.pred ? "ok" : "wrong")));
    this.body.appendChild(this.embeddingBox());
    await this.embed(this.method);
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
    box.appendChild(el("div", "ds-title", "confusion matrix (rows: true class, columns: predicted); click a cell"));
    const t = el("table", "confusion");
    const head = el("tr");
    head.appendChild(el("th", "corner", "true \\ pred"));
    s.classes.forEach((c) => head.appendChild(el("th", "", c)));
    t.appendChild(head);
    cm.forEach((row, i) => {
      const tr = el("tr");
      tr.appendChild(el("th", "", s.classes[i]));
      const total = row.reduce((a, b) => a + b, 0) || 1;
      row.forEach((v, j) => {
        const td = el("td", i === j ? "diag" : "");
        td.textContent = v;
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
        td.title = `${v} images of class ${s.classes[i]} predicted as ${s.classes[j]}`;
        if (v) td.onclick = () => this.showCell(i, j, td);
        tr.appendChild(td);
      });
      t.appendChild(tr);
    });
    box.appendChild(t);
    return box;
  }

  async showCell(i, j, td) {
    this.body.querySelectorAll("td.picked").forEach((e) => e.classList.remove("picked"));
    td.classList.add("picked");
    const d = await getJSON(`${this.base()}/cell?true=${i}&pred=${j}&limit=120`);
    const names = this.summary.classes;
    const g = this.gallery(`true ${names[i]}, predicted ${names[j]}: ${d.count} images` +
      (d.count > d.rows.length ? ` (first ${d.rows.length})` : ""), d.rows, (r) => pct(r.confidence), "cell");
    this.cellBox.replaceChildren(...g.childNodes);
    this.cellBox.hidden = false;
    this.cellBox.dataset.true = i;
    this.cellBox.dataset.pred = j;
    this.cellBox.dataset.count = d.count;
    page.set("cell", `${i},${j}`);
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
    if (!rows.length) g.appendChild(el("div", "note", "none"));
    box.appendChild(g);
    return box;
  }

  embeddingBox() {
    const box = el("div", "ds-section embedding-box");
    const bar = el("div", "ds-title");
    fill(bar, html`<span>embedding of the ${this.summary.features} penultimate features (the input of <code>${this.summary.layer}</code>)</span>`);
    const sel = el("select");
    sel.setAttribute("aria-label", "embedding method");
    [["pca", "PCA"], ["tsne", "t-SNE"], ["umap", "UMAP"]].forEach(([v, t]) => sel.appendChild(new Option(t, v)));
    sel.value = this.method;
    sel.onchange = () => this.embed(sel.value).catch((e) => { this.embProgress.set(0, 1, e.message); });
    bar.appendChild(sel);
    this.embProgress = progressBar();
    bar.appendChild(this.embProgress);
    const legend = el("div", "emb-legend");
    fill(legend, this.summary.classes.map((c, k) => html`<span><i style="background:${classColor(k)}"></i>${c}</span>`),
      html`<span>● correct</span><span>✕ misclassified</span>`);
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
    if (!await runJob(`${this.base()}/embedding?${q}`, this.embProgress, method === "pca" ? "PCA" : method, embedding.signal)) return;
    const e = await getJSON(`${this.base()}/embedding?${q}`);
    const names = this.summary.classes;
    this.scatter = new Scatter(this.canvas, { x: e.x, y: e.y, label: e.label, correct: e.correct }, {
      onHover: (i, ev) => {
        if (i < 0) { this.hoverTip.hidden = true; return; }
        const r = this.canvas.getBoundingClientRect();
        this.hoverTip.hidden = false;
        this.hoverTip.style.left = `${ev.clientX - r.left + 12}px`;
        this.hoverTip.style.top = `${ev.clientY - r.top + 12}px`;
        fill(this.hoverTip, html`<img src="${this.base()}/images/${i}.png" alt=""><div>true ${names[e.label[i]]}`,
          html`<br>pred ${names[e.pred[i]]}${e.correct[i] ? "" : " ✕"}<br><span class="note">row ${i}</span></div>`);
      },
      onClick: (i) => this.open(`${e.image_prefix}${i}`),
    });
    this.scatter.draw();
    this.canvas.dataset.points = String(e.x.length);
    this.canvas.dataset.method = method;
    /** @type {any} */ (window).__convscopeScatter = this.scatter;  // browser tests hover its points
    page.set("embedding", "ready");
  }
}
