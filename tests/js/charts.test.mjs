// The training charts' axis ticks (static/js/charts.js), without a browser.
// Run with: node --test tests/js/

import { test } from "node:test";
import assert from "node:assert/strict";
import { ticks } from "../../src/convscope/server/static/js/charts.js";

test("round ticks for ranges worked out by hand", () => {
  assert.deepEqual(ticks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1]);          // raw step 0.2
  assert.deepEqual(ticks(0, 10), [0, 2, 4, 6, 8, 10]);
  assert.deepEqual(ticks(0.3, 0.7), [0.3, 0.4, 0.5, 0.6, 0.7]);       // raw 0.08: step 0.1
  assert.deepEqual(ticks(0.1, 0.3, 2), [0.1, 0.2, 0.3]);              // 0.1 + 0.2 printed as 0.3
  assert.deepEqual(ticks(-1, 1, 4), [-1, -0.5, 0, 0.5, 1]);
  assert.deepEqual(ticks(0, 1, 4), [0, 0.25, 0.5, 0.75, 1]);          // step 2.5 x 0.1
  assert.deepEqual(ticks(1, 30, 8), [5, 10, 15, 20, 25, 30]);         // epochs 1..30: raw 3.6, step 5
  assert.deepEqual(ticks(0.512, 0.987), [0.6, 0.7, 0.8, 0.9]);
});

test("an empty or reversed range is its one value", () => {
  assert.deepEqual(ticks(5, 5), [5]);
  assert.deepEqual(ticks(2, 1), [2]);
});

test("ticks are round, evenly spaced, inside the range and cover it", () => {
  let seed = 7;
  const rnd = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  for (let k = 0; k < 500; k++) {
    // widths from 1e-4 to 1e4, the range within 50 widths of 0 (as losses and accuracies are)
    const width = (0.05 + rnd()) * 10 ** Math.floor(rnd() * 8 - 4);
    const lo = (rnd() - 0.5) * 100 * width, hi = lo + width;
    const n = 2 + Math.floor(rnd() * 8);
    const t = ticks(lo, hi, n);
    const step = t.length > 1 ? t[1] - t[0] : null;
    assert.ok(t.length >= 1 && t.length <= n + 1, `${lo}, ${hi}, ${n}: ${t}`);
    for (const v of t) assert.ok(v >= lo - Math.abs(lo) * 1e-9 && v <= hi + Math.abs(hi) * 1e-9, `${v} outside [${lo}, ${hi}]`);
    if (step === null) continue;
    const mant = step / 10 ** Math.floor(Math.log10(step) + 1e-9);
    assert.ok([1, 2, 2.5, 5].some((m) => Math.abs(mant - m) < 1e-6), `step ${step} for [${lo}, ${hi}]`);
    for (let i = 1; i < t.length; i++) assert.ok(Math.abs(t[i] - t[i - 1] - step) <= step * 1e-6, `${t}`);
    assert.ok(t[0] - lo < step * (1 + 1e-6) && hi - t[t.length - 1] < step * (1 + 1e-6), `${t} does not cover [${lo}, ${hi}]`);
    assert.ok(step * n >= (hi - lo) * (1 - 1e-9), `step ${step} x ${n} ticks < range ${hi - lo}`);
  }
});
