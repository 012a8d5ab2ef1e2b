// @ts-check
// "What does it look for?": for a convolution channel chosen in the overview or the
// detail view, the image that excites it most (activation maximisation, computed on
// demand as a job with a progress bar and then cached on disk by the server), its
// kernels, and its top-activating dataset examples when the server has a dataset.
// Every picture and number comes from routes_explain.py.

import { getJSON, q } from "./api.js";
import { num } from "./widgets.js";
import { el, html, byId as $ } from "./dom.js";
import { fmt } from "./colors.js";
import { Task } from "./task.js";
import { page } from "./page.js";
import { say } from "./i18n.js";

const STEPS = [32, 64, 128, 256, 512, 1024, 2048];

export function mountLookFor(getState) {
  const panel = new LookForPanel($("lookfor"), getState);
  // a channel's detail view offers the panel; an overview of another model closes it
  page.on("detail", (state) => { if (state === "ready") panel.offer(); });
  page.on("overview", (state) => { if (state === "ready" && panel.model && panel.model !== getState().model) panel.close(); });
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
    const b = el("button", "link lookfor-offer", "What does it look for?");
    b.title = "the image this channel responds to most, its kernels and its top dataset examples";
    b.onclick = () => this.open(layer, channel);
    head.insertBefore(b, head.querySelector(".close"));
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

  render() {
    this.visTask?.abandon();
    this.exTask?.abandon();
    this.root.replaceChildren();
    const head = el("header", "detail-head", html`<h2>What does <b>${this.layer}</b> channel <b>${this.channel}</b> look for?</h2>`);
    const nav = el("span", "lookfor-nav");
    const step = (d, text) => {
      const b = el("button", "link", text);
      b.disabled = this.channel + d < 0 || this.channel + d >= this.channels;
      b.onclick = () => this.open(this.layer, this.channel + d);
      return b;
    };
    nav.append(step(-1, "‹ previous"), el("span", "note", `channel ${this.channel + 1} of ${this.channels}`), step(1, "next ›"));
    head.appendChild(nav);
    const close = el("button", "close", "×");
    close.title = "close";
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
  async visualization() {
    const box = this.visBox;
    box.replaceChildren(el("h3", "", html`Activation maximisation <span class="hint">the input that drives the channel's mean activation highest</span>`));
    const controls = el("div", "lookfor-controls");
    const steps = el("select");
    steps.id = "lookfor-steps";
    [...new Set([...STEPS, this.info.steps])].sort((a, b) => a - b).forEach((n) => steps.appendChild(new Option(`${n} steps`, String(n))));
    steps.value = String(this.steps);
    steps.onchange = () => { this.steps = Number(steps.value); this.visualization(); };
    const again = el("button", "link lookfor-run", "optimise");
    again.hidden = true;
    again.onclick = () => this.compute();
    controls.append(steps, again);
    const progress = el("div", "why-progress");
    this.picture = el("div", "lookfor-picture");
    box.append(controls, progress, this.picture);
    this.againButton = again;
    this.visTask?.abandon();
    this.visTask = new Task(progress, "optimising");
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
    const task = this.visTask;
    let r;
    try {
      r = await task.run(this.api(`/layers/${encodeURIComponent(this.layer)}/visualization`, params), `optimising (${this.steps} steps)`);
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
    const img = Object.assign(el("img", "lookfor-image"), { src: r.image, alt: `channel ${r.channel}'s activation maximisation` });
    img.dataset.cached = String(r.cached);
    const small = Math.max(...r.size) < 96;
    if (small) img.classList.add("pixelated");
    const note = el("div", "note", [html`mean activation reached ${num(r.value, 4, "vis-value")} `,
      `after ${r.steps} steps · ${r.cached ? "from the cache" : "just computed, now cached"}`]);
    this.picture.replaceChildren(img, note);
    setStatus("featvis", "ready");
  }

  // -- kernels -----------------------------------------------------------------------------
  async kernels() {
    const box = this.kernelBox;
    box.replaceChildren(el("h3", "", "Kernels"));
    const k = await getJSON(this.api(`/layers/${encodeURIComponent(this.layer)}/kernels`, { channel: this.channel }));
    const [cin, kh, kw] = k.shape;
    const img = Object.assign(el("img", "lookfor-kernels-img pixelated"), { src: k.image, alt: "kernels" });
    const what = k.as_image
      ? `the ${kh}×${kw} filter as a ${cin === 3 ? "colour" : "grey"} image, mid-grey = 0`
      : `${cin} input channel${cin > 1 ? "s" : ""} × ${kh}×${kw}, red > 0 > blue, row-major`;
    const bias = k.bias === null ? "no bias" : html`bias ${num(k.bias, 4, "bias")}`;
    box.append(img, el("div", "note", html`${what}<br>range <span class="num" data-k="scale" data-value="${k.scale}">±${fmt(k.scale, 3)}</span> · ${bias}`));
  }

  // -- top dataset examples ----------------------------------------------------------------
  async examples() {
    const box = this.exBox;
    box.replaceChildren(el("h3", "", html`Top dataset examples <span class="hint">the images whose activation peaks highest, the map overlaid</span>`));
    if (!this.info.dataset) {
      box.appendChild(el("div", "note", html`no dataset is configured for this model: start <code>convscope serve --data NAME</code> to rank one`));
      return setStatus("examples", "none");
    }
    const progress = el("div", "why-progress");
    const out = el("div", "lookfor-examples-out");
    box.append(progress, out);
    this.exTask = new Task(progress, `ranking ${this.info.dataset}${this.info.split ? ` ${this.info.split}` : ""}`);
    setStatus("examples", "running");
    let r;
    try {
      r = await this.exTask.run(this.api(`/layers/${encodeURIComponent(this.layer)}/examples`, { channel: this.channel }));
    } catch (e) {
      this.error(out, e);
      return setStatus("examples", "error");
    }
    if (r === null) return setStatus("examples", "cancelled");
    if (r.constant) {  // a dead channel: its "top" images are an arbitrary pick of equals, so none are shown
      const dead = el("div", "note lookfor-constant", say(r.constant_note));
      out.append(dead);
      return setStatus("examples", "ready");
    }
    const img = Object.assign(el("img", "lookfor-examples-img"), { src: r.image, alt: "top examples" });
    const list = r.values.map((v, i) => html`${i ? " · " : ""}<span title="dataset image ${r.indices[i]}">${r.labels[i]}: ${num(v, 3)}</span>`);
    const note = el("div", "note", html`top ${r.values.length} of ${r.seen} ${r.dataset}${r.split ? ` ${r.split}` : ""} images (label: peak activation)<br>${list}`);
    if (r.note) {  // e.g. the offline MNIST subset: its first sentence, the rest on hover
      const more = el("div", "note lookfor-data-note", `${r.note.split(". ")[0]}.`);
      more.title = r.note;
      note.appendChild(more);
    }
    out.append(img, note);
    setStatus("examples", "ready");
  }
}
