// The search box's matching rule (static/js/search.js), without a browser.
// Run with: node --test tests/js/

import { test } from "node:test";
import assert from "node:assert/strict";
import { matches, middle } from "../../src/convscope/server/static/js/search.js";

test("every word of the query is found, case-insensitive, in any order", () => {
  assert.ok(matches("_blocks.15._depthwise_conv", "BLOCKS.15 depthwise"));
  assert.ok(matches("espresso machine", "machine espresso"));
  assert.ok(!matches("espresso machine", "espresso maker"));
  assert.ok(matches("anything", "   "));
});

test("a long layer name keeps its start and its end around one ellipsis", () => {
  const name = "_blocks.15._depthwise_conv.static_padding";
  assert.equal(middle(name), name);  // 41 characters: whole
  const cut = middle(name, 21);
  assert.equal(cut, "_blocks.15…ic_padding");
  assert.equal(cut.length, 21);  // 10 + "…" + 10
  assert.equal(middle(name, 20), "_blocks.15…c_padding");  // an odd room: the start gets the extra one
});
