// The search box's matching rule (static/js/search.js), without a browser.
// Run with: node --test tests/js/

import { test } from "node:test";
import assert from "node:assert/strict";
import { matches } from "../../src/convscope/server/static/js/search.js";

test("every word of the query is found, case-insensitive, in any order", () => {
  assert.ok(matches("_blocks.15._depthwise_conv", "BLOCKS.15 depthwise"));
  assert.ok(matches("espresso machine", "machine espresso"));
  assert.ok(!matches("espresso machine", "espresso maker"));
  assert.ok(matches("anything", "   "));
});
