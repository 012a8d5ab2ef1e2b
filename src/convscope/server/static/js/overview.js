// @ts-check
// The overview: one column per traced layer, every channel's activation map, the class
// scores at the right. Columns load their maps when they scroll into view.

import { getMany, q, pageEntry } from "./api.js";
import { paint, legend, fmt, cssColor, scaleFor, rangeFor } from "./colors.js";
import { el as make, fill, html } from "./dom.js";
import { pressable } from "./keyboard.js";
import { foldGroups, channelsLast, channelsFirstPage, cutMiddle, isLayoutOp } from "./arrange.js";
import { t, has, number } from "./i18n.js";

const SVGNS = "http://www.w3.org/2000/svg";
const STRIP_PAGE = 256;
const BUNDLE_MIN = 3; // a column fed from this many columns further left gets one band, not a line each
const COL_CHROME = 140; // around a column's maps: the arcs' room, its head, pager and legend, the padding below, in px
const MAP_GAP = 5;     // the gap between two maps of a column (.maps gap)
const COL_GAP = 14;    // the gap between two columns (.columns gap)

/** A curved line from (sx, sy) to (tx, ty), as CNN Explainer draws its edges. */
function curve(sx, sy, tx, ty, cls) {
  const line = document.createElementNS(SVGNS, "path");
  const mx = (sx + tx) / 2;
  line.setAttribute("d", `M${sx},${sy} C${mx},${sy} ${mx},${ty} ${tx},${ty}`);
  line.setAttribute("class", cls);
  return line;
}

/** Which channels of each feeding layer feed output channel c (structure, from the server's `connect`). */
function feeding(layer, c, inputLayers, dims) {
  const con = layer.connect || { mode: "all" };
  return inputLayers.map((inp, k) => {
    const n = dims(inp)[0];
    if (con.mode === "same") return c < n ? [c] : [];
    if (con.mode === "concat") {
      const lo = con.offsets[k], hi = con.offsets[k + 1];
      return c >= lo && c < hi ? [c - lo] : [];
    }
    if (con.mode === "groups") {
      const inPer = n / con.groups, outPer = dims(layer)[0] / con.groups;
      const g = Math.floor(c / outPer);
      return Array.from({ length: inPer }, (_, i) => g * inPer + i);
    }
    return null; // all
  });
}

/** The name inside its block (the block's label is shown above), cut in the middle to fit. */
function shortName(name, group) {
  return cutMiddle(group && name.startsWith(group + ".") ? name.slice(group.length + 1) : name);
}

/** A column's caption in the reader's language: the server's label ('conv 3×3 /2', 'max 2×2',
 * 'relu') with its first word, the layer's kind, put in the catalogue's word for that kind;
 * the numbers after it stay. A kind the catalogue lacks keeps the server's label. */
function kindLabel(layer) {
  if (!has(`overview.kinds.${layer.kind}`)) return layer.label;
  return [kindWord(layer.kind), ...String(layer.label).split(" ").slice(1)].join(" ");
}

/**
 * A layer kind in the catalogue's words (overview.kinds: one for each of the trace's KINDS), else as the trace says it.
 * @param {string} kind
 */
export function kindWord(kind) {
  const key = `overview.kinds.${kind}`;
  return has(key) ? t(key) : kind;
}

/** The dotted prefix every block's name starts with ('features.' for DenseNet's blocks), left off their labels. */
function sharedPrefix(names) {
  if (names.length < 2) return "";
  const first = names[0].split(".");
  let n = 0;
  while (n < first.length - 1 && names.every((g) => g.split(".")[n] === first[n] && g.split(".").length > n + 1)) n++;
  return n ? first.slice(0, n).join(".") + "." : "";
}

export class Overview {
  constructor(root, ctx) {
    this.root = root;   // the scrolling element
    this.ctx = ctx;     // {model, image, trace, mode, inputChannels, onSelect, onHover}
    this.cols = new Map();
    this.pages = new Map();
    this.cache = new Map();
    this.exact = new Map(); // full-resolution float32 pages behind pages drawn from block means (exactPage)
    this.queue = [];
    this.flushTimer = null;
    this.zoom = 1;        // how much larger than their natural size maps are drawn (fit())
    this.availH = 640;    // the height the overview may take in the window
    this.edgeFrame = 0;
    this.onResize = () => { clearTimeout(this.resizeTimer); this.resizeTimer = setTimeout(() => this.refit(), 150); };
    window.addEventListener("resize", this.onResize);
    // the box itself narrows when the detail panel opens beside it: spread the columns anew
    this.boxWidth = 0;
    this.resized = new ResizeObserver(() => {
      if (!this.wrap || this.root.clientWidth === this.boxWidth) return;
      this.boxWidth = this.root.clientWidth;
      this.spread();
      this.drawArcs();
      this.scheduleEdges();
    });
    this.resized.observe(this.root);
  }

  /** Size the maps to the window: the tallest column of maps fits its height, the maps grow to
   * fill its width (no more than 3× their natural size, down to half of it), and what width is
   * left spreads the columns apart (--col-gap), so the edges between them have room. */
  fit() {
    const top = this.root.getBoundingClientRect().top + window.scrollY;
    this.availH = Math.max(360, Math.floor(window.innerHeight - top - 12));
    this.root.style.maxHeight = `${this.availH}px`;
    this.zoom = 1;
    const maps = this.ctx.trace.layers.filter((l) => this.dims(l).length === 3);
    const room = this.root.clientWidth - 4;
    const byWidth = Math.max(1, room / this.naturalWidth());
    const fitH = (l) => { const n = Math.min(this.dims(l)[0], 12); return (this.availH - COL_CHROME - n * MAP_GAP) / (n * this.mapPx(l)); };
    const byHeight = Math.min(3, ...maps.filter((l) => this.dims(l)[0] <= 12).map(fitH));
    this.zoom = Math.max(0.5, Math.min(3, byWidth, byHeight));
    this.spread();
  }

  /** The columns' width at the current zoom with the narrowest gaps. */
  naturalWidth() {
    return this.ctx.trace.layers.reduce((w, l) => w + Math.max(64, this.dims(l).length === 3 ? this.mapPx(l) : 16) + COL_GAP, 36)
      + (this.ctx.trace.prediction.top.length ? 204 : 0);
  }

  /** Spread the width the columns leave over the gaps between them (--col-gap, 14 to 90 px). */
  spread() {
    const spare = this.root.clientWidth - 4 - this.naturalWidth();
    const gap = COL_GAP + Math.max(0, spare / (this.ctx.trace.layers.length + 1));
    this.root.style.setProperty("--col-gap", `${Math.min(90, Math.floor(gap))}px`);
  }

  /** Redraw at the new window size when the fit changes (the pages of maps start over). */
  refit() {
    const zoom = this.zoom, h = this.availH;
    this.fit();
    if (Math.abs(this.zoom - zoom) < 0.02 && h === this.availH) return;
    this.redraw();
  }

  /** Draw the columns again (a new fit, a new language), keeping the folded blocks folded; the
   * pages of maps already fetched are drawn from the cache. */
  redraw() {
    const folded = [...this.wrap.querySelectorAll(".group.folded")].map((g) => /** @type {HTMLElement} */ (g).dataset.group);
    if (this.observer) this.observer.disconnect();
    this.cols.clear();
    this.render();
    this.wrap.querySelectorAll(".group").forEach((g) => g.classList.toggle("folded", folded.includes(/** @type {HTMLElement} */ (g).dataset.group)));
    this.drawVisible();
  }

  /** Ask for one page; requests made in the same tick travel together in one response. */
  request(name, start, count, dtype, size = 0) {
    return new Promise((resolve, reject) => {
      this.queue.push({ name, start, count, dtype, size, resolve, reject });
      if (!this.flushTimer) this.flushTimer = setTimeout(() => this.flush(), 0);
    });
  }

  flush() {
    this.flushTimer = null;
    const all = this.queue.splice(0);
    const { model, image } = this.ctx;
    for (let i = 0; i < all.length; i += 24) {
      const chunk = all.slice(i, i + 24);
      const pages = chunk.map((r) => pageEntry(r.name, r.start, r.count, r.dtype, r.size)).join("|");
      getMany(`/api/models/${encodeURIComponent(model)}/activations?` + q({ image, pages }))
        .then((arrays) => chunk.forEach((r, k) => r.resolve(arrays[k])))
        .catch((e) => chunk.forEach((r) => r.reject(e)));
    }
  }

  render() {
    const { trace } = this.ctx;
    this.root.replaceChildren();
    const wrap = document.createElement("div");
    wrap.className = "columns-wrap";
    this.wrap = wrap;
    this.svg = document.createElementNS(SVGNS, "svg");
    this.svg.classList.add("edges");
    wrap.appendChild(this.svg);
    const row = document.createElement("div");
    row.className = "columns";
    wrap.appendChild(row);
    this.root.appendChild(wrap);
    this.byName = new Map(trace.layers.map((l) => [l.name, l]));
    this.groups = foldGroups(trace.layers);
    this.bhwc = channelsLast(trace.layers);
    this.fit();
    const shared = sharedPrefix([...new Set(this.groups.values())].filter(Boolean));
    let group = null, box = row;
    trace.layers.forEach((layer) => {
      const name = this.groups.get(layer.name);
      if (name !== (group && group.name)) {
        if (name) {
          box = document.createElement("div");
          box.className = "group";
          const label = make("button", "group-label", name.slice(shared.length));
          label.title = t("overview.fold_block", { name });
          const cols = make("div", "group-cols");
          box.append(label, cols);
          box.dataset.group = name;
          const g = box;
          label.onclick = () => this.fold(g, !g.classList.contains("folded"));
          row.appendChild(box);
          group = { name, el: box };
          box = cols;
        } else {
          box = row;
          group = null;
        }
      }
      box.appendChild(this.column(layer));
    });
    row.querySelectorAll(".group-cols").forEach((cols) => this.markOutput(cols));
    if (trace.prediction.top.length) row.appendChild(this.scoresColumn());
    this.observer = new IntersectionObserver((entries) => {
      for (const e of entries) if (e.isIntersecting) this.load(/** @type {HTMLElement} */ (e.target).dataset.layer);
    }, { root: this.root, rootMargin: "0px 400px 0px 400px" });
    for (const el of this.cols.values()) this.observer.observe(el);
    requestAnimationFrame(() => this.drawArcs());
  }

  /** Draw the edges between neighbouring columns once their maps are on screen (next frame). */
  scheduleEdges() {
    if (this.edgeFrame) return;
    this.edgeFrame = requestAnimationFrame(() => { this.edgeFrame = 0; this.drawEdges(); });
  }

  /** CNN Explainer's signature: faint lines from every drawn neuron to each drawn neuron of the
   * next column it feeds (all channels for a conv, the same channel for an element-wise layer). */
  drawEdges() {
    this.svg.querySelectorAll(".edge").forEach((p) => p.remove());
    this.sizeSvg();
    const base = this.wrap.getBoundingClientRect();
    const order = new Map(this.ctx.trace.layers.map((l, i) => [l.name, i]));
    const frag = document.createDocumentFragment();
    for (const layer of this.ctx.trace.layers) {
      const j = order.get(layer.name);
      const cb = this.cols.get(layer.name);
      if (!cb || cb.dataset.drawn !== "1" || this.shownColumn(layer.name) !== cb) continue;
      layer.inputs.forEach((src) => {
        if (order.get(src) !== j - 1) return; // arcs stand for the longer hops
        const ca = this.shownColumn(src), inp = this.byName.get(src);
        if (!ca || !inp || ca === cb || ca.dataset.drawn !== "1") return;
        const from = [...ca.querySelectorAll("canvas.neuron")].map((cv) => [cv, cv.getBoundingClientRect()]);
        cb.querySelectorAll("canvas.neuron").forEach((cv) => {
          const t = cv.getBoundingClientRect();
          if (!t.width) return;
          const c = cv.dataset.channel === undefined ? null : Number(cv.dataset.channel);
          const set = c === null ? null : feeding(layer, c, [inp], (l) => this.dims(l))[0];
          const tx = t.left - base.left, ty = t.top - base.top + t.height / 2;
          for (const [s, r] of from) {
            const ch = s.dataset.channel === undefined ? null : Number(s.dataset.channel);
            if (!r.width || (set && ch !== null && !set.includes(ch))) continue;
            frag.appendChild(curve(r.right - base.left, r.top - base.top + r.height / 2, tx, ty, "edge"));
          }
        });
      });
    }
    this.svg.prepend(frag);
  }

  /** Fold a block to its last layer (or unfold it); edges are redrawn to the visible columns. */
  fold(groupEl, folded) {
    groupEl.classList.toggle("folded", folded);
    this.drawArcs();
    this.scheduleEdges();
    if (!folded) this.drawVisible();
  }

  foldAll(folded) {
    this.wrap.querySelectorAll(".group").forEach((g) => g.classList.toggle("folded", folded));
    this.drawArcs();
    this.scheduleEdges();
    this.drawVisible();
  }

  /** A folded block shows its output: its last column that is not a layout move (a permute back
   * to channels-first holds the same values as the layer before it, under a meaningless name). */
  markOutput(cols) {
    const columns = [...cols.children];
    const out = columns.reverse().find((c) => !isLayoutOp(this.byName.get(c.dataset.layer))) || columns[0];
    out.classList.add("block-output");
  }

  /** The column standing for a layer on screen: itself, or its folded block's output column. */
  shownColumn(name) {
    const col = this.cols.get(name);
    const g = col && col.closest(".group.folded");
    return g ? g.querySelector(".group-cols > .column.block-output") : col;
  }

  /** The (C, H, W) or (N,) shape a layer is drawn in: channels-last tensors are drawn as maps
   * (the server sends those it marks as maps already; the page turns the ones it recognised). */
  dims(layer) {
    const s = layer.shape;
    return this.bhwc.has(layer.name) && layer.layout === undefined ? [s[2], s[0], s[1]] : s;
  }

  destroy() {
    if (this.observer) this.observer.disconnect();
    this.resized.disconnect();
    window.removeEventListener("resize", this.onResize);
  }

  pageSize(layer) {
    const d = this.dims(layer);
    if (d.length !== 3) return STRIP_PAGE;
    if (d[0] <= 12) return d[0];
    const px = this.mapPx(layer);
    return Math.max(4, Math.min(16, Math.floor((this.availH - COL_CHROME) / (px + MAP_GAP))));
  }

  /** A map's width on screen: twice its size, 28 to 60 px, times the window's zoom (fit()). */
  mapPx(layer) {
    const h = this.dims(layer)[1];
    return Math.round(Math.max(28, Math.min(60, h * 2)) * this.zoom);
  }

  column(layer) {
    const el = document.createElement("div");
    el.className = `column kind-${layer.kind}`;
    el.dataset.layer = layer.name;
    const last = this.bhwc.has(layer.name);
    const shape = (layer.stored_shape || layer.shape).join("×") + (last ? " HWC" : "");
    const short = shortName(layer.name, this.groups.get(layer.name));
    if (last) el.classList.add("channels-last");
    const head = t(last ? "overview.head_channels_last" : "overview.head", { name: layer.name, op: layer.op });
    fill(el, html`<div class="col-head" title="${head}">
        <div class="col-name" title="${layer.name}">${short}</div><div class="col-kind">${kindLabel(layer)}</div><div class="col-shape">${shape}</div></div>
      <div class="maps"></div><div class="pager"></div><div class="col-legend"></div>`);
    el.querySelector(".col-head").addEventListener("click", () => this.ctx.onSelect(layer.name, 0, null, null));
    this.cols.set(layer.name, el);
    this.pages.set(layer.name, 0);
    this.renderPager(layer);
    return el;
  }

  renderPager(layer) {
    const el = this.cols.get(layer.name);
    const n = this.dims(layer)[0], size = this.pageSize(layer), page = this.pages.get(layer.name);
    const pager = el.querySelector(".pager");
    if (n <= size) { pager.replaceChildren(); return; }
    const a = page * size, b = Math.min(n, a + size);
    const button = (cls, title, text, disabled, step) => {
      const btn = make("button", cls, text);
      Object.assign(btn, { title, disabled, onclick: () => this.turn(layer, step) });
      return btn;
    };
    pager.replaceChildren(button("prev", t("overview.previous_channels"), "‹", page === 0, -1),
      make("span", "", `${number(a + 1)}–${number(b)} / ${number(n)}`), button("next", t("overview.next_channels"), "›", b >= n, +1));
  }

  turn(layer, d) {
    this.pages.set(layer.name, this.pages.get(layer.name) + d);
    this.renderPager(layer);
    this.load(layer.name, true);
  }

  /** Fetch (once) and draw the current page of a layer. */
  async load(name, force = false) {
    const el = this.cols.get(name);
    if (!el || (el.dataset.drawn === "1" && !force)) return;
    const layer = this.byName.get(name);
    const size = this.pageSize(layer);
    const start = this.pages.get(name) * size;
    const key = `${name}|${start}`;
    el.dataset.drawn = "0";
    if (!this.cache.has(key)) this.cache.set(key, this.fetchPage(layer, start, size));
    let page;
    try {
      page = await this.cache.get(key);
    } catch (e) {
      this.cache.delete(key);
      el.querySelector(".maps").textContent = e.message;
      throw e;
    }
    if (this.pages.get(name) * size !== start) return; // a newer page was asked for
    this.draw(layer, page, start);
    el.dataset.drawn = "1";
    this.scheduleEdges();
  }

  /** One page of maps (or the whole strip). A channels-last layer the server marks (``layout``)
   * comes as (C, H, W) pages like any map layer; one only the page recognised (an older server's
   * (H, W, C) pages) is fetched whole, once, and cut into pages of channels here. */
  fetchPage(layer, start, size) {
    // float16 for a large page (its tooltip says the value is rounded); maps at least twice the size
    // they are drawn in come as float16 block means of that size (the server's shrink_maps: a quarter
    // of EfficientNet-Lite0's 7.1 MB first paint), their exact values fetched on hover (exactPage)
    const dtype = (count) => (count * layer.shape.slice(1).reduce((a, b) => a * b, 1) * 4 > 2e6 ? "float16" : "float32");
    if (this.bhwc.has(layer.name) && layer.layout === undefined) {
      const key = `${layer.name}|whole`, h = layer.shape[0];
      if (!this.cache.has(key)) {
        const whole = this.request(layer.name, 0, h, dtype(h));
        whole.catch(() => this.cache.delete(key));
        this.cache.set(key, whole);
      }
      return this.cache.get(key).then((whole) => channelsFirstPage(whole, start, size));
    }
    const count = layer.shape.length === 3 ? size : layer.shape[0];
    const drawn = layer.shape.length === 3 ? Math.ceil(this.mapPx(layer) * (window.devicePixelRatio || 1)) : 0;
    return this.request(layer.name, start, count, dtype(count), drawn);
  }

  /** The exact float32 page at full resolution behind a page drawn from block means, asked for on
   * the first hover (for the tooltip's value): {data} once here, {promise} while on its way. */
  exactPage(layer, start, n) {
    const key = `${layer.name}|${start}`;
    if (!this.exact.has(key)) {
      const entry = { data: null, promise: null };
      entry.promise = this.request(layer.name, start, n, "float32")
        .then((p) => { entry.data = p.data; }, () => { this.exact.delete(key); });
      this.exact.set(key, entry);
    }
    return this.exact.get(key);
  }

  draw(layer, page, start) {
    const el = this.cols.get(layer.name);
    const maps = el.querySelector(".maps");
    maps.replaceChildren();
    const { mode, trace, inputChannels } = this.ctx;
    if (page.header.shape.length === 3) {
      const [, h, w] = page.header.shape;
      const [H, W] = page.header.full_shape || [h, w]; // a page of block means (step) stands for maps of H x W
      const n = page.header.shape[0];
      const px = this.mapPx(layer);
      for (let i = 0; i < n; i++) {
        const c = start + i;
        const cv = document.createElement("canvas");
        cv.className = "neuron";
        cv.dataset.layer = layer.name;
        cv.dataset.channel = c;
        cv.style.width = `${px}px`;
        cv.style.height = `${Math.round((px * h) / w)}px`;
        const [lo, hi] = rangeFor(trace, layer, mode, page.header, i);
        if (mode === "unit" && lo === hi && layer.kind !== "input") {
          // one value everywhere (a dead ReLU's zeros): its own range is empty, so it says nothing
          // about sign or size; neutral grey and a mark instead of a colour that reads as a value
          paint(cv, page.data, h, w, "grey", lo - 1, hi + 1, i * h * w);
          cv.classList.add("constant");
          cv.dataset.constant = String(lo);
        } else {
          paint(cv, page.data, h, w, scaleFor(layer, c, inputChannels), lo, hi, i * h * w);
        }
        if (page.header.step) cv.dataset.step = String(page.header.step);
        this.wireNeuron(cv, layer, c, (ev) => {
          const r = cv.getBoundingClientRect();
          const y = Math.min(H - 1, Math.floor(((ev.clientY - r.top) / r.height) * H));
          const x = Math.min(W - 1, Math.floor(((ev.clientX - r.left) / r.width) * W));
          if (!page.header.step) return { y, x, value: page.data[i * h * w + y * w + x], rounded: page.header.dtype === "float16" };
          const exact = this.exactPage(layer, start, n); // drawn from block means: the value at (y, x) is the exact page's
          return { y, x, value: exact.data ? exact.data[(i * H + y) * W + x] : undefined, pending: exact.data ? null : exact.promise };
        });
        maps.appendChild(cv);
      }
      const [lo, hi] = rangeFor(trace, layer, mode === "unit" ? "layer" : mode);
      const lg = legend(scaleFor(layer, 0, inputChannels), lo, hi, fmt);
      if (mode === "unit" && n > 1) lg.title = t("overview.unit_legend");
      lg.dataset.mode = mode;
      el.querySelector(".col-legend").replaceChildren(lg);
    } else {
      const n = page.data.length;
      const cell = Math.max(1, Math.min(10, Math.floor(320 / n)));
      const cv = document.createElement("canvas");
      cv.className = "neuron strip";
      cv.dataset.layer = layer.name;
      cv.style.width = "16px";
      cv.style.height = `${n * cell}px`;
      const [lo, hi] = rangeFor(trace, layer, mode === "unit" ? "layer" : mode);
      paint(cv, page.data, n, 1, "diverging", lo, hi, 0);
      this.wireNeuron(cv, layer, null, (ev) => {
        const r = cv.getBoundingClientRect();
        const u = Math.min(n - 1, Math.floor(((ev.clientY - r.top) / r.height) * n));
        return { unit: u, value: page.data[u], rounded: page.header.dtype === "float16" };
      });
      maps.appendChild(cv);
      const lg = legend("diverging", lo, hi, fmt);
      lg.dataset.mode = mode;
      el.querySelector(".col-legend").replaceChildren(lg);
    }
  }

  wireNeuron(cv, layer, channel, locate) {
    pressable(cv, channel === null ? t("overview.units_of", { layer: layer.name }) : t("overview.channel_of", { layer: layer.name, channel }));
    cv.addEventListener("mousemove", (ev) => {
      const at = locate(ev);
      // the exact value is on its way (a page drawn from block means): say it again once it is here
      if (at.pending) at.pending.then(() => { if (cv.matches(":hover")) cv.dispatchEvent(new MouseEvent("mousemove", ev)); });
      const c = channel ?? at.unit;
      this.highlight(layer, c, cv);
      const names = layer.name === this.ctx.trace.prediction.output_layer ? this.ctx.trace.prediction.names : null;
      const where = at.unit !== undefined ? t("overview.tip_unit", { unit: at.unit }) + (names && names[at.unit] !== undefined ? ` · ${names[at.unit]}` : "")
        : t("overview.tip_channel", { channel: c, y: at.y, x: at.x });
      const flat = cv.dataset.constant !== undefined ? ` · ${t("overview.tip_constant")}` : "";
      this.ctx.onHover({ x: ev.clientX, y: ev.clientY, text: html`<b>${layer.name}</b> ${where}${flat}<br>${t("overview.tip_value", { value: at.rounded ? `≈${fmt(at.value, 3)}` : fmt(at.value, 4) })}` });
    });
    cv.addEventListener("mouseleave", () => { this.clearHighlight(); this.ctx.onHover(null); });
    cv.addEventListener("click", (ev) => {
      const at = locate(ev);
      this.ctx.onSelect(layer.name, channel ?? at.unit, at.y ?? null, at.x ?? null);
    });
  }

  scoresColumn() {
    const { trace } = this.ctx;
    const el = document.createElement("div");
    el.className = "column scores";
    el.dataset.layer = "__scores__";
    const top = trace.prediction.top;
    const maxP = Math.max(...top.map((t) => t.prob), 1e-9);
    fill(el, html`<div class="col-head"><div class="col-name">${t("overview.scores")}</div><div class="col-kind">${t("overview.kinds.softmax")}</div>
      <div class="col-shape">${t("overview.top_of", { n: number(top.length), classes: number(trace.prediction.classes) })}</div></div>`,
      html`<div class="score-list">${top.map((t, i) => html`<div class="score ${i === 0 ? "best" : ""}" data-index="${t.index}">
        <span class="score-name" title="${t.name}">${t.name}</span>
        <span class="score-bar"><span style="width:${(100 * t.prob) / maxP}%;background:${cssColor("logit", t.prob, 0, maxP)}"></span></span>
        <span class="score-val">${(100 * t.prob).toFixed(1)}%</span></div>`)}</div>`);
    /** @type {NodeListOf<HTMLElement>} */ (el.querySelectorAll(".score")).forEach((s) =>
      s.addEventListener("click", () => this.ctx.onSelect("__softmax__", Number(s.dataset.index), null, null)));
    return el;
  }

  /** Lines from the hovered neuron to the neurons that feed it (those on screen). */
  highlight(layer, c, target) {
    this.clearHighlight();
    const inputs = layer.inputs.map((n) => this.byName.get(n)).filter(Boolean);
    const sets = feeding(layer, c, inputs, (l) => this.dims(l));
    const base = this.wrap.getBoundingClientRect();
    const t = target.getBoundingClientRect();
    const tx = t.left - base.left, ty = t.top - base.top + t.height / 2;
    inputs.forEach((inp, k) => {
      const col = this.cols.get(inp.name);
      if (!col) return;
      col.querySelectorAll("canvas.neuron").forEach((cv) => {
        const ch = cv.dataset.channel === undefined ? null : Number(cv.dataset.channel);
        if (sets[k] && ch !== null && !sets[k].includes(ch)) return;
        const r = cv.getBoundingClientRect();
        this.svg.appendChild(curve(r.right - base.left, r.top - base.top + r.height / 2, tx, ty, "hl"));
        cv.classList.add("feeds");
      });
    });
    target.classList.add("hovered");
  }

  clearHighlight() {
    this.svg.querySelectorAll(".hl").forEach((p) => p.remove());
    this.wrap.querySelectorAll(".feeds, .hovered").forEach((e) => e.classList.remove("feeds", "hovered"));
  }

  /** Residual and concatenation edges: arcs over the columns for inputs that are not the previous
   * column. Edges between the same two shown columns are drawn once; a column fed from many
   * columns (DenseNet's concatenations) gets one band from the furthest, labelled with the count. */
  drawArcs() {
    this.svg.querySelectorAll(".arc, .arc-count").forEach((a) => a.remove());
    this.sizeSvg();
    const base = this.wrap.getBoundingClientRect();
    const order = new Map(this.ctx.trace.layers.map((l, i) => [l.name, i]));
    const x = (col) => { const r = col.querySelector(".col-head").getBoundingClientRect(); return r.left - base.left + r.width / 2; };
    /** @type {Map<Element, {layer: any, from: Map<Element, string[]>}>} */
    const into = new Map();
    this.ctx.trace.layers.forEach((layer, j) => {
      layer.inputs.forEach((src) => {
        const i = order.get(src);
        if (i === undefined || i === j - 1) return;
        const ca = this.shownColumn(src), cb = this.shownColumn(layer.name);
        if (ca === cb || (cb.previousElementSibling === ca)) return;
        if (!into.has(cb)) into.set(cb, { layer, from: new Map() });
        const from = into.get(cb).from;
        from.set(ca, [...(from.get(ca) || []), `${src} → ${layer.name}`]);
      });
    });
    for (const [cb, { layer, from }] of into) {
      const x2 = x(cb), sources = [...from.keys()];
      if (sources.length >= BUNDLE_MIN) {
        const x1 = Math.min(...sources.map(x));
        const names = [...from.values()].flat();
        this.arc(x1, x2, `arc arc-${layer.kind} bundle`, t("overview.bundle", { n: number(names.length), columns: number(sources.length), layer: layer.name }),
          Math.min(7, 1.5 + Math.log2(sources.length)), sources.length);
      } else {
        for (const [ca, names] of from) this.arc(x(ca), x2, `arc arc-${layer.kind}`, `${names.join("\n")} (${kindWord(layer.kind)})`);
      }
    }
  }

  /** The drawing covers the columns (measured without the last drawing). */
  sizeSvg() {
    this.svg.setAttribute("width", "0");
    this.svg.setAttribute("height", "0");
    this.svg.setAttribute("width", String(this.wrap.scrollWidth));
    this.svg.setAttribute("height", String(this.wrap.scrollHeight));
  }

  /** One arc over the column heads from x1 to x2 (a band with its count when ``count`` is given). */
  arc(x1, x2, cls, text, width = 0, count = 0) {
    const y = 30, lift = Math.min(26, 8 + (x2 - x1) / 40);
    const path = document.createElementNS(SVGNS, "path");
    path.setAttribute("d", `M${x1},${y} C${x1},${y - lift} ${x2},${y - lift} ${x2},${y}`);
    path.setAttribute("class", cls);
    if (width) path.style.strokeWidth = `${width}px`;
    const title = document.createElementNS(SVGNS, "title");
    title.textContent = text;
    path.appendChild(title);
    this.svg.appendChild(path);
    if (!count) return;
    path.dataset.count = String(count);
    const label = document.createElementNS(SVGNS, "text");
    label.setAttribute("class", "arc-count");
    label.setAttribute("x", String((x1 + x2) / 2));
    label.setAttribute("y", String(y - lift * 0.75 - 2));
    label.textContent = `×${count}`;
    this.svg.appendChild(label);
  }

  /** Repaint every drawn column under a new colour-range mode (no refetch). */
  setMode(mode) {
    this.ctx.mode = mode;
    for (const [name, el] of this.cols) {
      if (el.dataset.drawn !== "1") continue;
      const layer = this.byName.get(name);
      const size = this.pageSize(layer);
      const start = this.pages.get(name) * size;
      this.cache.get(`${name}|${start}`).then((page) => this.draw(layer, page, start));
    }
  }

  /** Columns whose box intersects the visible part of the scroller. */
  visibleColumns() {
    const r = this.root.getBoundingClientRect();
    return [...this.cols.values()].filter((el) => {
      const b = el.getBoundingClientRect();
      return b.width > 0 && b.right > r.left && b.left < r.right;
    });
  }

  async drawVisible() {
    await Promise.all(this.visibleColumns().map((el) => this.load(el.dataset.layer)));
  }
}
