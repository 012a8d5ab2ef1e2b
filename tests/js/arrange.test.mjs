// How the overview arranges a trace (static/js/arrange.js), without a browser: blocks folded by
// the module tree, channels-last layers found from the trace, names cut in the middle.
// Run with: node --test tests/js/

import { test } from "node:test";
import assert from "node:assert/strict";
import { foldGroups, channelsLast, channelsFirstPage, cutMiddle, isLayoutOp } from "../../src/convscope/server/static/js/arrange.js";

const layer = (name, group, inputs, extra = {}) => ({ name, group, inputs, kind: "conv", op: "Conv2d", shape: [4, 8, 8], ...extra });

test("one block holding most of the net is split by the module tree below it; functional nodes follow their latest input", () => {
  const layers = [
    layer("input", null, [], { kind: "input" }),
    layer("features.conv0", "features", ["input"]),
    layer("cat", "features", ["features.conv0"], { kind: "concat" }),  // a concat of one tensor: joins its consumer
    layer("features.block1.a.conv", "features", ["cat"]),
    layer("features.block1.b.conv", "features", ["features.block1.a.conv"]),
    layer("cat_1", "features", ["features.conv0", "features.block1.b.conv"], { kind: "concat" }),
    layer("features.trans1.conv", "features", ["cat_1"]),
    layer("features.trans1.pool", "features", ["features.trans1.conv"]),
    layer("fc", null, ["features.trans1.pool"], { kind: "linear" }),
  ];
  const g = foldGroups(layers);
  assert.deepEqual([...g.values()], [null, null, "features.block1", "features.block1", "features.block1", "features.block1",
    "features.trans1", "features.trans1", null]);
});

test("the server's blocks stay when none holds most of the net, and a block of one column is none", () => {
  const layers = [
    layer("conv1", null, []),
    layer("layer1.0.conv1", "layer1.0", ["conv1"]), layer("layer1.0.conv2", "layer1.0", ["layer1.0.conv1"]),
    layer("add", "layer1.0", ["layer1.0.conv2", "conv1"], { kind: "add" }),
    layer("layer2.0.conv1", "layer2.0", ["add"]), layer("layer2.0.conv2", "layer2.0", ["layer2.0.conv1"]),
    layer("add_1", "layer1.0", ["add", "layer2.0.conv2"], { kind: "add" }),  // the server put it after its first input
    layer("head.fc", "head", ["add_1"]),
  ];
  assert.deepEqual([...foldGroups(layers).values()],
    [null, "layer1.0", "layer1.0", "layer1.0", "layer2.0", "layer2.0", "layer2.0", null]);
});

test("a permute that moves a map's channels last starts a channels-last run; the permute back ends it", () => {
  const perm = { kind: "other", op: "torch.permute" };
  const layers = [
    layer("dw", null, [], { shape: [8, 16, 12] }),
    layer("permute", null, ["dw"], { ...perm, shape: [16, 12, 8] }),
    layer("norm", null, ["permute"], { kind: "other", op: "LayerNorm", shape: [16, 12, 8] }),
    layer("fc1", null, ["norm"], { kind: "linear", op: "Linear", shape: [16, 12, 32] }),
    layer("permute_1", null, ["fc1"], { ...perm, shape: [32, 16, 12] }),
    layer("after", null, ["permute_1"], { shape: [32, 16, 12] }),
    layer("told", null, ["after"], { shape: [16, 12, 32], layout: "BHWC" }),  // the server's word wins
  ];
  assert.deepEqual([...channelsLast(layers)], ["permute", "norm", "fc1", "told"]);
});

test("a channels-last tensor is paged as (channels, H, W) maps with each channel's range", () => {
  const h = 2, w = 3, c = 4;
  const data = Float32Array.from({ length: h * w * c }, (_, i) => i);  // value at (y, x, k) = (y*w + x)*c + k
  const page = channelsFirstPage({ header: { dtype: "float32", shape: [h, w, c] }, data }, 1, 2);
  assert.deepEqual(page.header.shape, [2, h, w]);
  assert.deepEqual([...page.data.subarray(0, h * w)], [1, 5, 9, 13, 17, 21]);  // channel 1
  assert.deepEqual(page.header.ch_min, [1, 2]);
  assert.deepEqual(page.header.ch_max, [21, 22]);
});

test("names are cut in the middle, at dots where the parts fit", () => {
  assert.equal(cutMiddle("denseblock1.denselayer12.norm1"), "denseblock1…norm1");
  assert.equal(cutMiddle("a.denselayer12.relu2"), "a…relu2");  // the middle part would not fit
  assert.equal(cutMiddle("short.name"), "short.name");
  assert.equal(cutMiddle("abcdefghijklmnopqrstuvwxyz"), "abcdefghi…stuvwxyz");
});

test("a layout move is a permute by its op, or what the server marks relayout", () => {
  assert.equal(isLayoutOp({ name: "permute_2", kind: "other", op: "torch.permute", shape: [], inputs: [] }), true);
  assert.equal(isLayoutOp({ name: "p", kind: "other", op: "Permute", shape: [], inputs: [], relayout: true }), true);
  assert.equal(isLayoutOp({ name: "norm", kind: "other", op: "LayerNorm", shape: [], inputs: [] }), false);
});
