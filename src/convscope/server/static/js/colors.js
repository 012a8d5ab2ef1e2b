// @ts-check
// Colour scales for activation maps. Display only: values and ranges come from the server.

import { el } from "./dom.js";
import { language } from "./i18n.js";

// ColorBrewer RdBu (11 classes), reversed so that negative = blue, 0 = white, positive = red.
const RDBU = ["#053061", "#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7",
              "#fddbc7", "#f4a582", "#d6604d", "#b2182b", "#67001f"];
const ORANGES = ["#fff5eb", "#fee6ce", "#fdd0a2", "#fdae6b", "#fd8d3c", "#f16913", "#d94801", "#8c2d04"];

function hexToRgb(h) {
  return [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16));
}

function buildLut(stops) {
  const rgb = stops.map(hexToRgb);
  const lut = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const t = (i / 255) * (rgb.length - 1);
    const k = Math.min(Math.floor(t), rgb.length - 2);
    const f = t - k;
    for (let c = 0; c < 3; c++) lut[i * 3 + c] = rgb[k][c] * (1 - f) + rgb[k + 1][c] * f;
  }
  return lut;
}

function tintLut(color) {
  const lut = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    for (let c = 0; c < 3; c++) lut[i * 3 + c] = 255 - (255 - color[c]) * (i / 255);
  }
  return lut;
}

/** @type {Record<string, Uint8ClampedArray>} */
const LUTS = {
  diverging: buildLut(RDBU),
  grey: buildLut(["#000000", "#ffffff"]),
  logit: buildLut(ORANGES),
  red: tintLut([200, 30, 30]),
  green: tintLut([30, 150, 60]),
  blue: tintLut([30, 70, 200]),
};

/** @type {Record<string, string>} */
const SCALE_CSS = {
  diverging: `linear-gradient(to right, ${RDBU.join(",")})`,
  grey: "linear-gradient(to right, #000, #fff)",
  logit: `linear-gradient(to right, ${ORANGES.join(",")})`,
  red: "linear-gradient(to right, #fff, rgb(200,30,30))",
  green: "linear-gradient(to right, #fff, rgb(30,150,60))",
  blue: "linear-gradient(to right, #fff, rgb(30,70,200))",
};

/**
 * The colour scale of one map: diverging (blue < 0 < red) for every layer but the input,
 * whose channels are shown as red, green and blue (three channels) or grey.
 * @param {{kind: string}} layer
 * @param {number} channel
 * @param {number} inputChannels
 * @returns {string}
 */
export function scaleFor(layer, channel, inputChannels) {
  if (layer.kind !== "input") return "diverging";
  if (inputChannels === 3) return ["red", "green", "blue"][channel] || "grey";
  return "grey";
}

/**
 * [lo, hi] for one map under the colour-range mode ("unit": the channel's own range from
 * the page header, "layer": the layer's, "global": the whole trace's, except the input);
 * every bound comes from the server's stats.
 * @param {{global?: {min: number, max: number} | null}} trace
 * @param {{kind: string, stats: {min: number, max: number}}} layer
 * @param {string} mode
 * @param {{ch_min?: number[], ch_max?: number[]} | null} [header] the page's header
 * @param {number} [i] the map's index in the page
 * @returns {[number, number]}
 */
export function rangeFor(trace, layer, mode, header = null, i = 0) {
  const s = layer.stats;
  if (mode === "global" && layer.kind !== "input" && trace.global) return [trace.global.min, trace.global.max];
  if (mode === "unit" && header && header.ch_min && header.ch_max) return [header.ch_min[i], header.ch_max[i]];
  return [s.min, s.max];
}

/**
 * The displayed [lo, hi] for a scale: diverging ranges are symmetric so white is 0.
 * @param {string} scale
 * @param {number} lo
 * @param {number} hi
 * @returns {[number, number]}
 */
export function displayRange(scale, lo, hi) {
  if (scale === "diverging") {
    const m = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
    return [-m, m];
  }
  return [lo, hi === lo ? lo + 1 : hi];
}

/**
 * Paint values (length h*w, row major, from offset) into a canvas of h x w pixels.
 * @param {HTMLCanvasElement} canvas
 * @param {ArrayLike<number>} values
 * @param {number} h
 * @param {number} w
 * @param {string} scale
 * @param {number} lo
 * @param {number} hi
 * @param {number} [offset]
 */
export function paint(canvas, values, h, w, scale, lo, hi, offset = 0) {
  canvas.width = w;
  canvas.height = h;
  const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
  const img = ctx.createImageData(w, h);
  const lut = LUTS[scale] || LUTS.diverging;
  const [a, b] = displayRange(scale, lo, hi);
  const k = 255 / (b - a || 1);
  for (let i = 0; i < h * w; i++) {
    let idx = Math.round((values[offset + i] - a) * k);
    idx = idx < 0 ? 0 : idx > 255 ? 255 : idx | 0;
    img.data[i * 4] = lut[idx * 3];
    img.data[i * 4 + 1] = lut[idx * 3 + 1];
    img.data[i * 4 + 2] = lut[idx * 3 + 2];
    img.data[i * 4 + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

/**
 * A CSS colour for one value (for grids of numbers).
 * @param {string} scale
 * @param {number} v
 * @param {number} lo
 * @param {number} hi
 * @returns {string}
 */
export function cssColor(scale, v, lo, hi) {
  const lut = LUTS[scale] || LUTS.diverging;
  const [a, b] = displayRange(scale, lo, hi);
  let idx = Math.round(((v - a) / (b - a || 1)) * 255);
  idx = Math.max(0, Math.min(255, idx));
  return `rgb(${lut[idx * 3]},${lut[idx * 3 + 1]},${lut[idx * 3 + 2]})`;
}

/**
 * WCAG relative luminance of an sRGB colour (0..255 channels).
 * @param {number[]} rgb
 * @returns {number}
 */
function luminance(rgb) {
  const [r, g, b] = rgb.map((c) => (c / 255 <= 0.04045 ? c / 255 / 12.92 : ((c / 255 + 0.055) / 1.055) ** 2.4));
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

/**
 * Text colour readable on top of cssColor(...): black or white, whichever contrasts more
 * with that very colour, so a number on any cell meets WCAG AA (against any colour one of
 * the two reaches at least 4.58:1; fixed thresholds on the value fell short on mid reds).
 * @param {string} scale
 * @param {number} v
 * @param {number} lo
 * @param {number} hi
 * @returns {string}
 */
export function inkFor(scale, v, lo, hi) {
  return inkOn(cssColor(scale, v, lo, hi).slice(4, -1).split(",").map(Number));
}

/**
 * Black or white text, whichever contrasts more with an opaque sRGB background.
 * @param {number[]} rgb
 * @returns {string}
 */
export function inkOn(rgb) {
  const l = luminance(rgb);
  return (l + 0.05) / 0.05 >= 1.05 / (l + 0.05) ? "#000" : "#fff";
}

/**
 * A small colour legend element: gradient bar with its two end values.
 * @param {string} scale
 * @param {number} lo
 * @param {number} hi
 * @param {(v: number) => string} fmt
 */
export function legend(scale, lo, hi, fmt) {
  const [a, b] = displayRange(scale, lo, hi);
  const bar = el("span", "bar");
  bar.style.background = SCALE_CSS[scale] || SCALE_CSS.diverging;
  const ends = el("span", "ends");
  ends.append(el("span", "", fmt(a)), el("span", "", fmt(b)));
  const box = el("div", "legend");
  box.append(bar, ends);
  return box;
}

/**
 * A number as the page shows it: `digits` significant digits, exponent form outside
 * [1e-3, 1e4), "–" for a missing value.
 * @param {number | null | undefined} v
 * @param {number} [digits]
 * @returns {string}
 */
export function fmt(v, digits = 3) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-3) return v.toExponential(2);
  // rounded first, then written with the reader's decimal sign and minus (no grouping: values
  // under 1e4 read as one number); where those are JavaScript's own (en, zh-CN) toString writes
  // the same digits five times faster than Intl, and the detail views format thousands
  const lang = language(), rounded = Number(v.toPrecision(digits));
  const decimal = () => formatter(lang, { maximumSignificantDigits: 21, useGrouping: false });
  let plain = PLAIN.get(lang);
  if (plain === undefined) PLAIN.set(lang, (plain = decimal().format(-1.5) === "-1.5"));
  return plain ? rounded.toString() : decimal().format(rounded);
}

/** @type {Map<string, boolean>} per language: whether it writes -1.5 as JavaScript does */
const PLAIN = new Map();

/** @type {Map<string, Intl.NumberFormat>} */
const FORMATTERS = new Map();

/**
 * One Intl.NumberFormat per language and options (building one costs far more than using it,
 * and the detail views format thousands of numbers).
 * @param {string} lang
 * @param {Intl.NumberFormatOptions} opts
 */
function formatter(lang, opts) {
  const key = `${lang}|${JSON.stringify(opts)}`;
  let f = FORMATTERS.get(key);
  if (!f) FORMATTERS.set(key, (f = new Intl.NumberFormat(lang, opts)));
  return f;
}

/**
 * A share (0..1) as a percentage in the reader's language, "–" when missing: 0.9734 -> "97.3%".
 * @param {number | null | undefined} v
 * @param {number} [decimals]
 * @returns {string}
 */
export function percent(v, decimals = 1) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  return formatter(language(), { style: "percent", minimumFractionDigits: decimals, maximumFractionDigits: decimals }).format(v);
}
