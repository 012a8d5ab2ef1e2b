// Colour ranges and colours of the activation maps (static/js/colors.js), without a browser:
// which [lo, hi] a map is painted with under the unit / layer / global modes, the displayed
// range of each scale, and the colours at the ends and the middle of a scale.
// Run with: node --test tests/js/

import { test } from "node:test";
import assert from "node:assert/strict";
import { rangeFor, scaleFor, displayRange, cssColor, inkFor, fmt, percent } from "../../src/convscope/server/static/js/colors.js";

// a trace as the server sends it: per-layer stats, the whole trace's range, per-page channel ranges
const trace = { global: { min: -7, max: 9 } };
const input = { kind: "input", stats: { min: 0, max: 1 } };
const conv = { kind: "conv", stats: { min: -2, max: 5 } };
const page = { dtype: "float16", shape: [3, 4, 4], ch_min: [-1, -0.5, 0], ch_max: [1, 2, 4] };

test("unit mode: each map its own channel's range from the page header", () => {
  assert.deepEqual(page.ch_min.map((_, i) => rangeFor(trace, conv, "unit", page, i)), [[-1, 1], [-0.5, 2], [0, 4]]);
  // no per-channel ranges (a strip of units, or the legend): the layer's range
  assert.deepEqual(rangeFor(trace, conv, "unit"), [-2, 5]);
  assert.deepEqual(rangeFor(trace, conv, "unit", { dtype: "float32", shape: [10] }, 3), [-2, 5]);
});

test("layer mode: the layer's range for every map of it", () => {
  for (const i of [0, 1, 2]) assert.deepEqual(rangeFor(trace, conv, "layer", page, i), [-2, 5]);
  assert.deepEqual(rangeFor(trace, input, "layer", page, 1), [0, 1]);
});

test("global mode: the whole trace's range, except the input keeps its own", () => {
  assert.deepEqual(rangeFor(trace, conv, "global", page, 2), [-7, 9]);
  assert.deepEqual(rangeFor(trace, input, "global", page, 0), [0, 1]);
  assert.deepEqual(rangeFor({ global: null }, conv, "global"), [-2, 5]);  // a trace without a global range
});

test("scales: diverging everywhere but the input, whose channels are red, green, blue or grey", () => {
  assert.equal(scaleFor(conv, 0, 3), "diverging");
  assert.deepEqual([0, 1, 2].map((c) => scaleFor(input, c, 3)), ["red", "green", "blue"]);
  assert.equal(scaleFor(input, 0, 1), "grey");
  assert.equal(scaleFor(input, 3, 4), "grey");
});

test("displayed range: diverging is symmetric about 0; empty ranges widen", () => {
  assert.deepEqual(displayRange("diverging", -2, 5), [-5, 5]);
  assert.deepEqual(displayRange("diverging", -3, 1), [-3, 3]);
  assert.deepEqual(displayRange("diverging", 0, 0), [-1, 1]);
  assert.deepEqual(displayRange("grey", -2, 5), [-2, 5]);
  assert.deepEqual(displayRange("grey", 3, 3), [3, 4]);
});

test("colours: ColorBrewer RdBu ends and white 0 for diverging, black to white for grey, clamped outside", () => {
  // 0 is the middle class #f7f7f7, up to the table's 256 steps (0 falls on entry 128 of 0..255)
  const mid = cssColor("diverging", 0, -2, 5).match(/\d+/g).map(Number);
  for (const c of mid) assert.ok(Math.abs(c - 247) <= 1, `${mid}`);
  assert.equal(cssColor("diverging", -5, -2, 5), "rgb(5,48,97)");      // #053061
  assert.equal(cssColor("diverging", 5, -2, 5), "rgb(103,0,31)");      // #67001f
  assert.equal(cssColor("diverging", 50, -2, 5), "rgb(103,0,31)");
  assert.equal(cssColor("grey", -2, -2, 5), "rgb(0,0,0)");
  assert.equal(cssColor("grey", 5, -2, 5), "rgb(255,255,255)");
  assert.equal(cssColor("grey", 1.5, -2, 5), "rgb(128,128,128)");      // half way: index round(127.5) = 128
  assert.equal(cssColor("red", 1, 0, 1), "rgb(200,30,30)");
  assert.equal(cssColor("no-such-scale", 0, -1, 1), cssColor("diverging", 0, -1, 1));
  // readable ink: white on the dark ends, dark in the light middle
  assert.deepEqual([-5, 0, 5].map((v) => inkFor("diverging", v, -5, 5)), ["#fff", "#000", "#fff"]);
  assert.deepEqual([0, 1].map((v) => inkFor("grey", v, 0, 1)), ["#fff", "#000"]);
});

test("ink on every colour of every scale meets WCAG AA (4.5:1)", () => {
  /** @param {string} css */
  const lum = (css) => {
    const c = (css === "#000" ? [0, 0, 0] : css === "#fff" ? [255, 255, 255] : css.slice(4, -1).split(",").map(Number))
      .map((x) => (x / 255 <= 0.04045 ? x / 255 / 12.92 : ((x / 255 + 0.055) / 1.055) ** 2.4));
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  for (const scale of ["diverging", "grey", "red", "green", "blue", "logit"]) {
    for (let i = -255; i <= 255; i++) {
      const [bg, fg] = [lum(cssColor(scale, i, -255, 255)), lum(inkFor(scale, i, -255, 255))];
      const ratio = (Math.max(bg, fg) + 0.05) / (Math.min(bg, fg) + 0.05);
      assert.ok(ratio >= 4.5, `${scale} at ${i}: ${ratio.toFixed(2)}:1`);
    }
  }
});

test("numbers as the page shows them", () => {
  assert.deepEqual([null, undefined, NaN, 0, 0.123456, 12345, 0.0001234, -2.5].map((v) => fmt(v)),
    ["–", "–", "–", "0", "0.123", "1.23e+4", "1.23e-4", "-2.5"]);
  assert.equal(fmt(3.14159, 5), "3.1416");
});

test("fmt in English writes the digits Number.toPrecision rounds to, as toString writes them", () => {
  // fmt goes through the reader's language; English (and Chinese) must read exactly as before
  let seed = 11;
  const rnd = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  for (let k = 0; k < 2000; k++) {
    const v = (rnd() - 0.5) * 10 ** Math.floor(rnd() * 7 - 2);  // 1e-3 .. 1e4, both signs
    if (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e4) continue;
    for (const digits of [2, 3, 4]) assert.equal(fmt(v, digits), Number(v.toPrecision(digits)).toString(), `${v}, ${digits}`);
  }
  assert.equal(percent(0.9734), "97.3%");
  assert.equal(percent(1, 0), "100%");
  assert.equal(percent(null), "–");
});
