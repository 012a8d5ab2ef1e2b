// Colour scales for activation maps. Display only: values and ranges come from the server.

import { el } from "./dom.js";

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

const LUTS = {
  diverging: buildLut(RDBU),
  grey: buildLut(["#000000", "#ffffff"]),
  logit: buildLut(ORANGES),
  red: tintLut([200, 30, 30]),
  green: tintLut([30, 150, 60]),
  blue: tintLut([30, 70, 200]),
};

export const SCALE_CSS = {
  diverging: `linear-gradient(to right, ${RDBU.join(",")})`,
  grey: "linear-gradient(to right, #000, #fff)",
  logit: `linear-gradient(to right, ${ORANGES.join(",")})`,
  red: "linear-gradient(to right, #fff, rgb(200,30,30))",
  green: "linear-gradient(to right, #fff, rgb(30,150,60))",
  blue: "linear-gradient(to right, #fff, rgb(30,70,200))",
};

/** The displayed [lo, hi] for a scale: diverging ranges are symmetric so white is 0. */
export function displayRange(scale, lo, hi) {
  if (scale === "diverging") {
    const m = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
    return [-m, m];
  }
  return [lo, hi === lo ? lo + 1 : hi];
}

/** Paint values (length h*w, row major) into a canvas of h x w pixels. */
export function paint(canvas, values, h, w, scale, lo, hi, offset = 0) {
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d");
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

/** A CSS colour for one value (for grids of numbers). */
export function cssColor(scale, v, lo, hi) {
  const lut = LUTS[scale] || LUTS.diverging;
  const [a, b] = displayRange(scale, lo, hi);
  let idx = Math.round(((v - a) / (b - a || 1)) * 255);
  idx = Math.max(0, Math.min(255, idx));
  return `rgb(${lut[idx * 3]},${lut[idx * 3 + 1]},${lut[idx * 3 + 2]})`;
}

/** Text colour that stays readable on top of cssColor(...). */
export function inkFor(scale, v, lo, hi) {
  const [a, b] = displayRange(scale, lo, hi);
  const t = (v - a) / (b - a || 1);
  if (scale === "diverging") return t < 0.15 || t > 0.85 ? "#fff" : "#222";
  if (scale === "grey") return t < 0.5 ? "#fff" : "#222";
  return t > 0.7 ? "#fff" : "#222";
}

/** A small colour legend element: gradient bar with its two end values. */
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

export function fmt(v, digits = 3) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-3) return v.toExponential(2);
  return Number(v.toPrecision(digits)).toString();
}
