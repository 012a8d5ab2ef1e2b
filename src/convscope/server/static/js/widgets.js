// @ts-check
// Small building blocks for the detail views: maps, number grids, formulas.

import { b64Floats } from "./binary.js";
import { paint, cssColor, inkFor, fmt } from "./colors.js";
import { el, html } from "./dom.js";
import { t } from "./i18n.js";

/**
 * Values smaller than this in size are drawn and written as 0. A weight decayed to 1e-24 (channel
 * 0 of the default model's conv_2_2) is no weight, but scaled to its own range its float noise
 * looks like as much structure as a live kernel's (whose weights are 0.1 to 1).
 */
const TINY = 1e-12;

/**
 * Why a map's colours would mislead, from the range it is painted on: "constant" (one value
 * everywhere: the range is empty, so a colour would read as a sign or a size it does not have),
 * "zero" (every value under TINY in size), or null.
 * @param {number} lo
 * @param {number} hi
 * @returns {"constant" | "zero" | null}
 */
function flatness(lo, hi) {
  if (lo === hi) return "constant";
  return Math.max(Math.abs(lo), Math.abs(hi)) < TINY ? "zero" : null;
}

/** Decode a server map {shape:[h,w], data:b64, min, max} once. */
export function mapValues(m) {
  if (!m._values) m._values = b64Floats(m.data);
  return m._values;
}

/**
 * A map's box: value(y, x) reads a value, mark(rects) outlines cells
 * [top, left, height, width, class], canvas is what it is drawn on.
 * @typedef {HTMLDivElement & {value: (y: number, x: number) => number, mark: (rects: [number, number, number, number, string][]) => void, canvas: HTMLCanvasElement}} MapView
 */

/**
 * A canvas showing a map, with hover values and optional rectangles (windows).
 * opts: {px, scale, range:[lo,hi], label, onHover(y,x,v), onClick(y,x), onLeave}
 * @returns {MapView}
 */
export function mapView(m, opts = {}) {
  const [h, w] = m.shape;
  const vals = mapValues(m);
  const box = /** @type {MapView} */ (el("div", "mapview"));
  const stage = el("div", "stage");
  const cv = el("canvas", "map");
  // the longer side gets px; a thin map (a vector shown as a column) stays at least 12 px wide
  const px = opts.px || Math.max(48, Math.min(150, Math.max(h, w) * 4));
  const k = px / Math.max(h, w);
  cv.style.width = `${Math.max(12, Math.round(w * k))}px`;
  cv.style.height = `${Math.max(12, Math.round(h * k))}px`;
  const [lo, hi] = opts.range || [m.min, m.max];
  const flat = flatness(lo, hi);
  // as the overview paints a constant map: neutral grey, dashed, and said under it
  if (flat) {
    paint(cv, vals, h, w, "grey", lo - 1, hi + 1);
    cv.classList.add("constant");
    box.dataset.flat = flat;
  } else {
    paint(cv, vals, h, w, opts.scale || "diverging", lo, hi);
  }
  stage.appendChild(cv);
  box.appendChild(stage);
  const flatNote = flat && el("span", "flat-note", flat === "constant" ? t("widgets.map_constant", { value: fmt(lo, 4) }) : t("widgets.map_zero"));
  if (opts.label || flatNote) box.appendChild(el("div", "maplabel", [opts.label || "", opts.label && flatNote ? " · " : "", flatNote || ""]));
  const at = (ev) => {
    const r = cv.getBoundingClientRect();
    const y = Math.max(0, Math.min(h - 1, Math.floor(((ev.clientY - r.top) / r.height) * h)));
    const x = Math.max(0, Math.min(w - 1, Math.floor(((ev.clientX - r.left) / r.width) * w)));
    return [y, x];
  };
  cv.addEventListener("mousemove", (ev) => {
    const [y, x] = at(ev);
    if (opts.onHover) opts.onHover(y, x, vals[y * w + x], ev);
  });
  if (opts.onLeave) cv.addEventListener("mouseleave", opts.onLeave);
  if (opts.onClick) cv.addEventListener("click", (ev) => opts.onClick(...at(ev)));
  box.value = (y, x) => vals[y * w + x];
  /** Outline cells [top, left, height, width] (may reach outside: padding). */
  box.mark = (rects) => {
    stage.querySelectorAll(".mark").forEach((e) => e.remove());
    for (const [t, l, hh, ww, cls] of rects) {
      const r = el("div", `mark ${cls || ""}`);
      r.style.left = `${(100 * l) / w}%`;
      r.style.top = `${(100 * t) / h}%`;
      r.style.width = `${(100 * ww) / w}%`;
      r.style.height = `${(100 * hh) / h}%`;
      stage.appendChild(r);
    }
  };
  box.canvas = cv;
  return box;
}

/**
 * A table of numbers with coloured cells. values: 2-D array (null: a padding cell). A table
 * whose values are all under TINY in size but not all 0 (a dead channel's decayed kernel) is
 * written as zeros on white and says so, instead of its noise on its own range.
 */
export function grid(values, opts = {}) {
  const flat = values.flat();
  const numbers = /** @type {number[]} */ (flat.filter((v) => v !== null));
  const zeros = numbers.length > 0 && numbers.some((v) => v !== 0) && numbers.every((v) => Math.abs(v) < TINY);
  const lo = zeros ? -1 : opts.range ? opts.range[0] : Math.min(...flat);
  const hi = zeros ? 1 : opts.range ? opts.range[1] : Math.max(...flat);
  const scale = opts.scale || "diverging";
  const table = el("table", `grid ${opts.cls || ""}`);
  values.forEach((row, i) => {
    const tr = el("tr");
    row.forEach((v, j) => {
      const td = el("td");
      if (v === null) {
        td.className = "pad";
        td.textContent = "0";
      } else {
        const shown = zeros ? 0 : v;
        td.textContent = fmt(shown, opts.digits || 3);
        td.style.background = cssColor(scale, shown, lo, hi);
        td.style.color = inkFor(scale, shown, lo, hi);
        if (zeros) td.title = String(v);  // the exact value stays readable
      }
      if (opts.mark && opts.mark[0] === i && opts.mark[1] === j) td.classList.add("marked");
      tr.appendChild(td);
    });
    table.appendChild(tr);
  });
  if (zeros) {
    table.dataset.flat = "zero";
    table.title = t("widgets.grid_zero");
  }
  if (opts.title || zeros) {
    const wrap = el("div", "gridbox");
    if (opts.title) wrap.appendChild(el("div", "gridtitle", opts.title));
    wrap.appendChild(table);
    if (zeros) wrap.appendChild(el("div", "gridtitle flat-note", t(opts.title ? "widgets.grid_zero" : "widgets.grid_zero_short")));
    return wrap;
  }
  return table;
}

/**
 * A number shown rounded that keeps its exact value in data-value (tests and tooltips read it).
 * @param {number} v
 * @param {number} [digits]
 * @param {string | null} [key] its data-k
 */
export function num(v, digits = 4, key = null) {
  return html`<span class="num"${key ? html` data-k="${key}"` : ""} data-value="${v}">${fmt(v, digits)}</span>`;
}
