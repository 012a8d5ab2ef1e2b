// @ts-check
// SVG line charts for training curves: axes with round ticks, one path per series,
// a dot per point (hover shows the value), and a legend. Numbers come from the server; the
// words (the empty chart, a point's hover text) from the catalogue's training section.

import { t as tr, language } from "./i18n.js";
import { percent } from "./colors.js";

const NS = "http://www.w3.org/2000/svg";
const W = 460, H = 270, M = { l: 48, r: 12, t: 26, b: 62 };

/**
 * A new SVG element with these attributes, appended to parent when given.
 * @param {string} tag
 * @param {Record<string, string | number>} [attrs]
 * @param {Element | null} [parent]
 * @returns {SVGElement}
 */
function s(tag, attrs = {}, parent = null) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (parent) parent.appendChild(e);
  return e;
}

/**
 * About how wide a legend label is drawn (px at the chart's font size): CJK characters take
 * about twice a Latin letter's width, so Chinese legends are spaced by their real length.
 * @param {string} text
 */
function textWidth(text) {
  let w = 0;
  for (const c of text) w += /** @type {number} */ (c.codePointAt(0)) >= 0x2e80 ? 11 : 5.6;
  return w;
}

/**
 * About n round tick values covering [lo, hi]: multiples of 1, 2, 2.5 or 5 times a power of ten.
 * @param {number} lo
 * @param {number} hi
 * @param {number} [n]
 * @returns {number[]}
 */
export function ticks(lo, hi, n = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = /** @type {number} */ ([1, 2, 2.5, 5, 10].map((f) => f * mag).find((v) => v >= raw));  // 10 * mag >= raw always
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}

/**
 * One line: its points (xs[i], ys[i]); key and run end up in data attributes for tests.
 * @typedef {{name: string, color: string, dash?: string, xs: number[], ys: (number | null | undefined)[], key?: string, run?: string}} Series
 */

/**
 * Draw series into svg. Missing values (null) break the line.
 * @param {SVGElement} svg
 * @param {Series[]} series
 * @param {{title?: string, xLabel?: string, ymin?: number, ymax?: number, percent?: boolean, xName?: (x: number) => string}} [opts]
 *   xName: what a point's x is called in its hover text (default: "epoch x")
 */
export function lineChart(svg, series, opts = {}) {
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const pts = /** @type {[number, number][]} */ (series.flatMap((sr) => sr.xs.map((x, i) => [x, sr.ys[i]]).filter(([, y]) => y !== null && y !== undefined)));
  svg.dataset.points = String(pts.length);
  const lang = language();
  const number = (/** @type {number} */ v, /** @type {number} */ digits) => Number(v.toPrecision(digits)).toLocaleString(lang, { maximumSignificantDigits: digits });
  s("text", { x: M.l, y: 16, class: "chart-title" }, svg).textContent = opts.title || "";
  if (!pts.length) {
    s("text", { x: W / 2, y: H / 2, class: "chart-empty", "text-anchor": "middle" }, svg).textContent = tr("training.chart_empty");
    return;
  }
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(Math.max(...xs), x0 + 1);
  let y0 = opts.ymin ?? Math.min(...ys), y1 = opts.ymax ?? Math.max(...ys);
  if (opts.ymin === undefined) y0 = Math.max(0, y0 - 0.05 * (y1 - y0 || 1));
  if (!(y1 > y0)) y1 = y0 + 1;
  const px = (x) => M.l + ((x - x0) / (x1 - x0)) * (W - M.l - M.r);
  const py = (y) => H - M.b - ((y - y0) / (y1 - y0)) * (H - M.t - M.b);
  const axes = s("g", { class: "axes" }, svg);
  for (const t of ticks(y0, y1, 5)) {
    s("line", { x1: M.l, x2: W - M.r, y1: py(t), y2: py(t), class: "grid" }, axes);
    s("text", { x: M.l - 5, y: py(t) + 3, "text-anchor": "end" }, axes).textContent = opts.percent ? percent(t, 0) : number(t, 3);
  }
  const xt = ticks(x0, x1, Math.min(8, x1 - x0)).filter((t) => Number.isInteger(t));
  for (const t of xt) {
    s("line", { x1: px(t), x2: px(t), y1: H - M.b, y2: H - M.b + 4, class: "tick" }, axes);
    s("text", { x: px(t), y: H - M.b + 15, "text-anchor": "middle" }, axes).textContent = t.toLocaleString(lang);
  }
  s("line", { x1: M.l, x2: W - M.r, y1: H - M.b, y2: H - M.b, class: "axis" }, axes);
  s("text", { x: (M.l + W - M.r) / 2, y: H - M.b + 28, "text-anchor": "middle", class: "axis-label" }, axes).textContent = opts.xLabel || "";
  let legendX = M.l, legendY = H - 19;
  series.forEach((sr) => {
    const g = s("g", { class: "series", "data-key": sr.key || "", "data-run": sr.run || "" }, svg);
    let d = "", pen = false;
    sr.xs.forEach((x, i) => {
      const y = sr.ys[i];
      if (y === null || y === undefined) { pen = false; return; }
      d += `${pen ? "L" : "M"}${px(x).toFixed(1)},${py(y).toFixed(1)}`;
      pen = true;
    });
    s("path", { d, stroke: sr.color, "stroke-dasharray": sr.dash || "", fill: "none", "stroke-width": 2 }, g);
    sr.xs.forEach((x, i) => {
      const y = sr.ys[i];
      if (y === null || y === undefined) return;
      const c = s("circle", { cx: px(x), cy: py(y), r: 3, fill: sr.color, "data-epoch": x, "data-value": y }, g);
      s("title", {}, c).textContent = tr("training.chart_point", {
        series: sr.name,
        x: opts.xName ? opts.xName(x) : tr("training.epoch", { n: x.toLocaleString(lang) }),
        y: opts.percent ? percent(y, 2) : y.toLocaleString(lang, { minimumSignificantDigits: 4, maximumSignificantDigits: 4 }),
      });
    });
    const width = 30 + textWidth(sr.name);
    if (legendX + width > W && legendX > M.l) { legendX = M.l; legendY += 13; }
    const item = s("g", { class: "legend-item", transform: `translate(${legendX},${legendY})` }, svg);
    legendX += width;
    s("line", { x1: 0, x2: 18, y1: -4, y2: -4, stroke: sr.color, "stroke-dasharray": sr.dash || "", "stroke-width": 2 }, item);
    s("text", { x: 22, y: 0 }, item).textContent = sr.name;
  });
}
