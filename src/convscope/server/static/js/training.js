// @ts-check
// The training view: runs under the server's runs folder, their loss and accuracy curves
// (live while `convscope train` writes them), a second run to compare, and the first
// layer's filters and activation maps of a fixed image, epoch by epoch.
// Every number comes from /api/runs; this module only draws. A damaged run is listed
// with what is wrong (lines of its metrics.jsonl skipped, or why it cannot be described at
// all) and never hides the others. Its words come from the catalogue's "training" section; a
// language switch redraws the view from the answers it holds (nothing is fetched again).

import { getJSON } from "./api.js";
import { b64Floats } from "./binary.js";
import { paint, fmt, percent } from "./colors.js";
import { lineChart } from "./charts.js";
import { el, fill, html } from "./dom.js";
import { page } from "./page.js";
import { t, onLanguage } from "./i18n.js";
import { phrase } from "./phrase.js";

const POLL_MS = 1500;
const COLORS = ["#b2182b", "#2166ac"]; // first run, compared run
const enc = encodeURIComponent;

/**
 * The warning lines under a run in the list: why it cannot be described (its `error`),
 * and each of its `problems` (a metrics.jsonl line skipped, a file that links outside).
 * @param {{error?: string, problems?: string[]}} run a row of /api/runs
 * @returns {HTMLElement[]}
 */
function warnings(run) {
  const lines = run.error ? [t("training.unreadable", { error: run.error })] : [];
  return [...lines, ...(run.problems || [])].map((text) => el("div", run.error ? "run-warning run-error" : "run-warning", `⚠ ${text}`));
}

export class TrainingView {
  constructor(root) {
    this.root = root;
    this.runs = [];
    this.selected = null; // run name
    this.compare = null; // run name or null
    this.data = {}; // run name -> last /metrics answer
    this.epoch = null; // snapshot epoch shown
    this.followLatest = true;
    this.timer = null;
    /** @type {string | null | undefined} the runs folder as /api/runs last named it */
    this.runsRoot = undefined;
    /** @type {{key: string, data: any} | null} the snapshot shown, kept for a redraw */
    this.snapshot = null;
    this.build();
    onLanguage(() => this.redraw());
  }

  /** Everything again in the language now chosen, from the answers held. */
  redraw() {
    this.build();
    this.shownKey = null;
    if (this.runsRoot === undefined) return;  // nothing answered yet: the first poll draws
    this.note();
    this.renderList();
    this.draw();
  }

  /** A status word of /api/runs in the reader's language (an unknown one as it came). */
  status(status) {
    const key = `training.status.${status}`;
    const word = t(key);
    return word === key ? status : word;
  }

  build() {
    this.root.replaceChildren();
    const side = el("div", "runs-side");
    side.appendChild(el("h3", "", t("training.runs")));
    this.listEl = el("div", "run-list");
    this.rootNote = el("div", "note");
    side.append(this.listEl, this.rootNote);
    const body = el("div", "runs-body");
    this.head = el("div", "run-head");
    const charts = el("div", "charts");
    this.lossSvg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    this.accSvg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    this.lossSvg.classList.add("chart", "chart-loss");
    this.accSvg.classList.add("chart", "chart-acc");
    charts.append(this.lossSvg, this.accSvg);
    this.snap = el("div", "snapshots");
    body.append(this.head, charts, this.snap);
    this.root.append(side, body);
  }

  async start() {
    await this.poll();
    if (!this.timer) this.timer = setInterval(() => this.poll().catch((e) => this.fail(e)), POLL_MS);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
  }

  fail(e) {
    this.rootNote.textContent = e.message;
    page.set("training", "error");
  }

  async poll() {
    const { root, runs } = await getJSON("/api/runs");
    this.runs = runs;
    this.runsRoot = root;
    this.note();
    const drawable = runs.filter((r) => !r.error);  // a run that cannot be described has nothing to draw
    const has = (name) => drawable.some((r) => r.name === name);
    if (!this.selected || !has(this.selected)) {
      const wanted = new URLSearchParams(location.search).get("run");
      this.selected = has(wanted) ? wanted : (drawable[0] && drawable[0].name) || null;
    }
    if (this.compare && !has(this.compare)) this.compare = null;
    this.renderList();
    let changed = false;
    for (const name of [this.selected, this.compare].filter(Boolean)) {
      const old = this.data[name];
      const d = await getJSON(`/api/runs/${enc(name)}/metrics` + (old ? `?since=${enc(old.version)}` : ""));
      if (d.changed) { this.data[name] = d; changed = true; }
    }
    if (changed || !this.drawn) this.draw();
    page.set("training", this.selected ? "ready" : "empty");
  }

  /** The line under the list: where the runs are, or how to make one. */
  note() {
    const root = this.runsRoot;
    if (!this.runs.length) {
      fill(this.rootNote, root
        ? phrase("training.no_runs", { root: html`<code>${root}</code>`, command: html`<code>convscope train --out ${root}/NAME</code>` })
        : phrase("training.no_folder", { command: html`<code>convscope serve --runs DIR</code>` }));
    } else {
      fill(this.rootNote, root && phrase("training.runs_under", { root: html`<code>${root}</code>` }));
    }
  }

  renderList() {
    this.listEl.replaceChildren();
    for (const r of this.runs) {
      const row = el("div", `run-row ${r.name === this.selected ? "active" : ""} ${r.name === this.compare ? "compared" : ""}`);
      row.dataset.run = r.name;
      const total = r.total_epochs ? `/${r.total_epochs}` : "";
      const best = percent(r.best_val_acc);
      const about = t("training.row", { model: r.model || "?", data: r.data || "?", epoch: `${r.epochs}${total}`, best });
      fill(row, html`<span class="run-name">${r.name}</span><span class="run-status ${r.status}">${this.status(r.status)}</span>`,
        !r.error && html`<span class="note">${about}</span>`);
      this.listEl.appendChild(row);
      if (r.error) {
        row.classList.add("broken");
        row.append(...warnings(r));
        continue;
      }
      row.onclick = () => this.choose(r.name);
      const cmp = el("label", "run-compare");
      const box = el("input");
      box.type = "checkbox";
      box.checked = r.name === this.compare;
      box.disabled = r.name === this.selected;
      box.title = t("training.compare_title");
      box.onclick = (ev) => {
        ev.stopPropagation();
        this.compare = box.checked ? r.name : null;
        this.refresh();
      };
      cmp.append(box, ` ${t("training.compare")}`);
      row.append(cmp, ...warnings(r));
    }
  }

  choose(name) {
    if (name === this.compare) this.compare = null;
    this.selected = name;
    this.epoch = null;
    this.followLatest = true;
    this.refresh();
  }

  refresh() {
    this.drawn = false;
    this.poll().catch((e) => this.fail(e));
  }

  draw() {
    this.drawn = true;
    const main = this.data[this.selected];
    if (!main) {
      for (const e of [this.head, this.lossSvg, this.accSvg, this.snap]) e.replaceChildren();
      return;
    }
    const r = main.run;
    fill(this.head, html`<b>${r.name}</b> <span class="run-status ${r.status}">${this.status(r.status)}</span> `,
      html`<span class="note">${r.command && html`<code>${r.command}</code>`}</span>`);
    const runs = [[this.selected, main]];
    if (this.compare && this.data[this.compare]) runs.push([this.compare, this.data[this.compare]]);
    const series = (keys) => runs.flatMap(([name, d], i) => keys.map(([key, label, dash]) => ({
      name: runs.length > 1 ? t("training.series", { run: name, series: t(label) }) : t(label), key, run: name,
      color: COLORS[i], dash, xs: d.curves.epoch || [], ys: d.curves[key] || [],
    })));
    lineChart(this.lossSvg, series([["train_loss", "training.train", ""], ["val_loss", "training.val", "5 4"]]),
      { title: t("training.loss_title"), xLabel: t("training.epoch_axis") });
    lineChart(this.accSvg, series([["train_acc", "training.train", ""], ["val_acc", "training.val", "5 4"]]),
      { title: t("training.accuracy_title"), xLabel: t("training.epoch_axis"), ymin: 0, ymax: 1, percent: true });
    this.drawSnapshots(main);
  }

  drawSnapshots(d) {
    const epochs = d.snapshots;
    if (!epochs.length) {
      fill(this.snap, el("div", "note", t("training.no_snapshots")));
      return;
    }
    if (this.followLatest || this.epoch === null || !epochs.includes(this.epoch)) this.epoch = epochs[epochs.length - 1];
    let bar = this.snap.querySelector(".snap-bar");
    if (!bar) {
      this.snap.replaceChildren();
      bar = el("div", "snap-bar");
      this.slider = el("input", "epoch-slider");
      this.slider.type = "range";
      this.slider.setAttribute("aria-label", t("training.epoch_slider"));
      this.epochLabel = el("span", "epoch-label");
      bar.append(el("b", "", t("training.first_layer")), this.slider, this.epochLabel);
      this.snapBody = el("div", "snap-body");
      this.snap.append(bar, this.snapBody);
      this.slider.oninput = () => {
        this.epoch = this.snapEpochs[+this.slider.value];
        this.followLatest = +this.slider.value === this.snapEpochs.length - 1;
        this.showEpoch();
      };
    }
    this.snapEpochs = epochs;
    this.slider.min = "0";
    this.slider.max = String(epochs.length - 1);
    this.slider.value = String(epochs.indexOf(this.epoch));
    this.showEpoch();
  }

  async showEpoch() {
    const run = this.selected;
    const epoch = this.epoch;
    this.epochLabel.textContent = t(epoch === 0 ? "training.initial" : "training.epoch", { n: epoch });
    const key = `${run}@${epoch}@${this.data[run].version}`;
    if (this.shownKey === key) return;
    const s = this.snapshot?.key === key ? this.snapshot.data : await getJSON(`/api/runs/${enc(run)}/snapshots/${epoch}`);
    if (this.selected !== run || this.epoch !== epoch) return; // the user moved on meanwhile
    this.shownKey = key;
    this.snapshot = { key, data: s };
    this.snapBody.replaceChildren();
    this.snapBody.dataset.epoch = epoch;
    const img = el("div", "snap-image");
    img.append(Object.assign(el("img"), { src: s.image, alt: t("training.fixed_alt") }),
      el("div", "note", t("training.fixed", { label: s.label_name })));
    this.snapBody.appendChild(img);
    this.snapBody.appendChild(this.filters(s));
    this.snapBody.appendChild(this.maps(s));
    page.set("snapshot", String(epoch));
  }

  filters(s) {
    const [o, i, kh, kw] = s.weight.shape;
    const vals = b64Floats(s.weight.data);
    const range = s.weight_range || 1;
    const box = el("div", "snap-group");
    box.appendChild(el("div", "snap-title", t("training.filters", { layer: s.layer, n: o, shape: `${i}×${kh}×${kw}`, range: fmt(range) })));
    const grid = el("div", "filter-grid");
    for (let f = 0; f < o; f++) {
      const cell = el("div", "filter");
      for (let c = 0; c < Math.min(i, 3); c++) {
        const cv = el("canvas", "kernel");
        paint(cv, vals, kh, kw, "diverging", -range, range, (f * i + c) * kh * kw);
        cv.title = t("training.filter_title", { f, c, bias: fmt(s.bias[f]) });
        cell.appendChild(cv);
      }
      grid.appendChild(cell);
    }
    box.appendChild(grid);
    return box;
  }

  maps(s) {
    const [c, mh, mw] = s.activations.shape;
    const vals = b64Floats(s.activations.data);
    const range = s.activation_range || 1;
    const box = el("div", "snap-group");
    box.appendChild(el("div", "snap-title", t("training.maps", { layer: s.layer, range: fmt(range) })));
    const grid = el("div", "map-grid");
    for (let k = 0; k < c; k++) {
      const cv = el("canvas", "act");
      paint(cv, vals, mh, mw, "diverging", -range, range, k * mh * mw);
      cv.title = t("training.channel", { k });
      grid.appendChild(cv);
    }
    box.appendChild(grid);
    return box;
  }
}
