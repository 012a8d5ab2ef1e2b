// @ts-check
// "What does it look for?": for a convolution channel chosen in the overview or the
// detail view, the image that excites it most (activation maximisation, computed on
// demand as a job with a progress bar and then cached on disk by the server), its
// kernels, and its top-activating dataset examples when the server has a dataset.
// Every picture and number comes from routes_explain.py; the words from the catalogue's
// "lookfor" section. A language switch redraws the open panel from the answers it holds.

import { getJSON, q } from "./api.js";
import { num } from "./widgets.js";
import { el, html, byId as $ } from "./dom.js";
import { fmt } from "./colors.js";
import { Task } from "./task.js";
import { page } from "./page.js";
import { say, t, has, number, onLanguage } from "./i18n.js";
import { phrase } from "./phrase.js";

const STEPS = [32, 64, 128, 256, 512, 1024, 2048];

export function mountLookFor(getState) {
  const panel = new LookForPanel($("lookfor"), getState);
  // a channel's detail view offers the panel; an overview of another model closes it
  page.on("detail", (state) => { if (state === "ready") panel.offer(); });
  page.on("overview", (state) => { if (state === "ready" && panel.model && panel.model !== getState().model) panel.close(); });
  // the detail view is redrawn on a switch too (main.js), without the offer: offer it again once
  // every listener ran, whichever order they were added in
  onLanguage(() => { panel.redraw(); queueMicrotask(() => panel.offer()); });
  return panel;
}

/**
 * @param {"lookfor" | "featvis" | "examples"} key
 * @param {string} value
 */
const setStatus = (key, value) => page.set(key, value);

class LookForPanel {
  constructor(root, getState) {
    this.root = root;
    this.getState = getState;
    this.model = null;
    this.info = null;
    // the columns' progress hosts and tasks: made once, kept across redraws (a running job keeps its bar)
    /** @type {HTMLElement | null} */
    this.visProgress = null;
    /** @type {HTMLElement | null} */
    this.exProgress = null;
    /** @type {Task | null} */
    this.visTask = null;
    /** @type {Task | null} */
    this.exTask = null;
    /** the answers shown, kept for a redraw */
    this.visResult = this.kernelResult = this.examplesResult = null;
  }

  api(path, params = {}) {
    return `/api/models/${encodeURIComponent(this.model)}${path}?${q(params)}`;
  }

  layerRecord(name) {
    return (this.getState().trace?.layers || []).find((l) => l.name === name);
  }

  /** Put the "What does it look for?" link on the detail view of a convolution channel. */
  offer() {
    const s = this.getState();
    const [layer, channel] = s.selected || [];
    const rec = this.layerRecord(layer);
    if (!rec || rec.kind !== "conv" || rec.shape.length !== 3) return;
    if (!this.root.hidden && (layer !== this.layer || channel !== this.channel)) this.open(layer, channel);
    const head = $("detail").querySelector(".detail-head");
    if (!head || head.querySelector(".lookfor-offer")) return;
    const b = el("button", "link lookfor-offer");
    b.onclick = () => this.open(layer, channel);
    head.insertBefore(b, head.querySelector(".close"));
    this.labelOffer();
  }

  /** The offer's words in the language now chosen (the detail view may outlive a switch). */
  labelOffer() {
    const b = $("detail").querySelector(".lookfor-offer");
    if (!b) return;
    b.textContent = t("lookfor.offer");
    b.setAttribute("title", t("lookfor.offer_title"));
  }

  close() {
    this.root.hidden = true;
    this.visTask?.abandon();
    this.exTask?.abandon();
    this.layer = this.channel = null;
    setStatus("lookfor", "closed");
  }

  async open(layer, channel) {
    const s = this.getState();
    setStatus("lookfor", "loading");
    if (this.model !== s.model || !this.info) {
      this.model = s.model;
      this.info = await getJSON(this.api("/features"));
      this.steps = this.info.steps;
    }
    this.layer = layer;
    this.channel = channel;
    this.channels = this.layerRecord(layer)?.shape[0] || channel + 1;
    this.render();
    this.root.hidden = false;
    this.root.scrollIntoView({ block: "nearest", behavior: "instant" });
    try {
      await Promise.all([this.kernels(), this.visualization()]);
      setStatus("lookfor", "ready");
    } catch (e) {
      this.error(this.root, e);
      setStatus("lookfor", "error");
    }
    this.examples();
  }

  error(box, e) {
    box.appendChild(el("div", "why-error", e.message));
  }

  /** The open panel again in the language now chosen, from the answers it holds (no job runs again). */
  redraw() {
    if (this.root.hidden || !this.info || this.layer === null) return;
    this.frame();
    this.visFrame();
    if (this.visResult) this.showVis(this.visResult);
    if (this.kernelResult) this.showKernels(this.kernelResult);
    if (this.examplesFrame() && this.examplesResult) this.showExamples(this.examplesResult);
  }

  render() {
    this.visTask?.abandon();
    this.exTask?.abandon();
    this.visResult = this.kernelResult = this.examplesResult = null;
    this.frame();
  }

  /** The head (title, previous / next channel, close) and the three empty columns. */
  frame() {
    this.root.replaceChildren();
    const title = phrase("lookfor.head", { layer: html`<b>${this.layer}</b>`, channel: html`<b>${this.channel}</b>` });
    const head = el("header", "detail-head", html`<h2>${title}</h2>`);
    const nav = el("span", "lookfor-nav");
    const step = (d, text) => {
      const b = el("button", "link", text);
      b.disabled = this.channel + d < 0 || this.channel + d >= this.channels;
      b.onclick = () => this.open(this.layer, this.channel + d);
      return b;
    };
    nav.append(step(-1, t("lookfor.previous")), el("span", "note", t("lookfor.position", { i: this.channel + 1, n: this.channels })),
      step(1, t("lookfor.next")));
    head.appendChild(nav);
    const close = el("button", "close", "×");
    close.title = t("lookfor.close");
    close.onclick = () => this.close();
    head.appendChild(close);
    const cols = el("div", "lookfor-cols");
    this.visBox = el("section", "lookfor-col lookfor-vis");
    this.kernelBox = el("section", "lookfor-col lookfor-kernels");
    this.exBox = el("section", "lookfor-col lookfor-examples");
    cols.append(this.visBox, this.kernelBox, this.exBox);
    this.root.append(head, cols);
  }

  // -- activation maximisation -------------------------------------------------------------
  /** The column's head, steps menu and "optimise" button; its progress host and task outlive a redraw. */
  visFrame() {
    const box = this.visBox;
    box.replaceChildren(el("h3", "", html`${t("lookfor.vis_head")} <span class="hint">${t("lookfor.vis_hint")}</span>`));
    const controls = el("div", "lookfor-controls");
    const steps = el("select");
    steps.id = "lookfor-steps";
    steps.setAttribute("aria-label", t("lookfor.steps_label"));
    [...new Set([...STEPS, this.info.steps])].sort((a, b) => a - b)
      .forEach((n) => steps.appendChild(new Option(t("lookfor.steps", { n }), String(n))));
    steps.value = String(this.steps);
    steps.onchange = () => { this.steps = Number(steps.value); this.visualization(); };
    const again = el("button", "link lookfor-run", t("lookfor.optimise"));
    again.hidden = this.visTask?.state !== "cancelled";
    again.onclick = () => this.compute();
    controls.append(steps, again);
    this.visProgress ||= el("div", "why-progress");
    this.picture = el("div", "lookfor-picture");
    box.append(controls, this.visProgress, this.picture);
    this.againButton = again;
    this.visTask ||= new Task(this.visProgress, "");  // each run says its own label
  }

  async visualization() {
    this.visTask?.abandon();
    this.visResult = null;
    this.visFrame();
    setStatus("featvis", "loading");
    const params = { channel: this.channel, steps: this.steps };
    const cached = await getJSON(this.api(`/layers/${encodeURIComponent(this.layer)}/visualization`, params));
    if (cached.cached) return this.showVis(cached);
    this.compute();  // not on disk yet: optimise now (the first request of a channel costs one optimisation)
  }

  async compute() {
    this.againButton.hidden = true;
    this.picture.replaceChildren();
    setStatus("featvis", "running");
    const params = { channel: this.channel, steps: this.steps };
    const n = this.steps, task = this.visTask;
    let r;
    try {
      r = await task.run(this.api(`/layers/${encodeURIComponent(this.layer)}/visualization`, params),
        () => t("lookfor.optimising_steps", { n }));
    } catch (e) {
      this.error(this.picture, e);
      return setStatus("featvis", "error");
    }
    if (r === null) {
      if (task.state === "cancelled") {
        this.againButton.hidden = false;
        setStatus("featvis", "cancelled");
      }
      return;
    }
    this.showVis(r);
  }

  showVis(r) {
    this.visResult = r;
    const img = Object.assign(el("img", "lookfor-image"), { src: r.image, alt: t("lookfor.vis_alt", { channel: r.channel }) });
    img.dataset.cached = String(r.cached);
    const small = Math.max(...r.size) < 96;
    if (small) img.classList.add("pixelated");
    const source = t(r.cached ? "lookfor.from_cache" : "lookfor.computed");
    const note = el("div", "note", phrase("lookfor.reached", { value: num(r.value, 4, "vis-value"), n: r.steps, source }));
    this.picture.replaceChildren(img, note);
    setStatus("featvis", "ready");
  }

  // -- kernels -----------------------------------------------------------------------------
  async kernels() {
    this.kernelBox.replaceChildren(el("h3", "", t("lookfor.kernels_head")));
    this.showKernels(await getJSON(this.api(`/layers/${encodeURIComponent(this.layer)}/kernels`, { channel: this.channel })));
  }

  showKernels(k) {
    this.kernelResult = k;
    const box = this.kernelBox;
    const [cin, kh, kw] = k.shape;
    const size = `${kh}×${kw}`;
    const img = Object.assign(el("img", "lookfor-kernels-img pixelated"), { src: k.image, alt: t("lookfor.kernels_alt") });
    const what = k.as_image ? t(cin === 3 ? "lookfor.kernel_colour" : "lookfor.kernel_grey", { size }) : t("lookfor.kernel_channels", { n: cin, size });
    const bias = k.bias === null ? t("lookfor.no_bias") : phrase("lookfor.bias", { value: num(k.bias, 4, "bias") });
    const range = html`<span class="num" data-k="scale" data-value="${k.scale}">±${fmt(k.scale, 3)}</span>`;
    box.replaceChildren(el("h3", "", t("lookfor.kernels_head")), img,
      el("div", "note", html`${what}<br>${phrase("lookfor.kernel_range", { value: range, bias: html`${bias}` })}`));
    // weights all under 1e-12: the server drew them as zeros (their noise on its own range would look like a filter)
    if (k.zero) box.appendChild(el("div", "note lookfor-kernel-zero", t("lookfor.kernel_zero")));
  }

  // -- top dataset examples ----------------------------------------------------------------
  /** "dataset split" as the notes name the images ranked, the split in the reader's language. */
  images(r) {
    if (!r.split) return r.dataset;
    const key = `dataset.split.${r.split}`;
    return t("lookfor.images", { dataset: r.dataset, split: has(key) ? t(key) : r.split });
  }

  /** The column's head, and its progress host and result box; false when there is no dataset to rank. */
  examplesFrame() {
    const box = this.exBox;
    box.replaceChildren(el("h3", "", html`${t("lookfor.examples_head")} <span class="hint">${t("lookfor.examples_hint")}</span>`));
    if (!this.info.dataset) {
      box.appendChild(el("div", "note", phrase("lookfor.no_dataset", { command: html`<code>convscope serve --data NAME</code>` })));
      return false;
    }
    this.exProgress ||= el("div", "why-progress");
    this.exOut = el("div", "lookfor-examples-out");
    box.append(this.exProgress, this.exOut);
    this.exTask ||= new Task(this.exProgress, "");
    const info = this.info;
    this.exTask.label = () => t("lookfor.ranking", { images: this.images(info) });
    return true;
  }

  async examples() {
    if (!this.examplesFrame()) return setStatus("examples", "none");
    setStatus("examples", "running");
    let r;
    try {
      r = await this.exTask.run(this.api(`/layers/${encodeURIComponent(this.layer)}/examples`, { channel: this.channel }));
    } catch (e) {
      this.error(this.exOut, e);
      return setStatus("examples", "error");
    }
    if (r === null) return setStatus("examples", "cancelled");
    this.showExamples(r);
    setStatus("examples", "ready");
  }

  showExamples(r) {
    this.examplesResult = r;
    const out = this.exOut;
    if (r.constant) {  // a dead channel: its "top" images are an arbitrary pick of equals, so none are shown
      const dead = el("div", "note lookfor-constant", say(r.constant_note));
      out.replaceChildren(dead);
      return;
    }
    const img = Object.assign(el("img", "lookfor-examples-img"), { src: r.image, alt: t("lookfor.examples_alt") });
    const list = r.values.map((v, i) => html`${i ? " · " : ""}<span title="${t("lookfor.example_title", { index: r.indices[i] })}">${r.labels[i]}: ${num(v, 3)}</span>`);
    const note = el("div", "note", html`${t("lookfor.examples_note", { k: r.values.length, n: number(r.seen), images: this.images(r) })}<br>${list}`);
    if (r.note) {  // e.g. the offline MNIST subset: its first sentence, the rest on hover
      const more = el("div", "note lookfor-data-note", `${r.note.split(". ")[0]}.`);
      more.title = r.note;
      note.appendChild(more);
    }
    out.replaceChildren(img, note);
  }
}
