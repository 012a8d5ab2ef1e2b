// The page's store (static/js/store.js), without a browser: get/set/update, listeners and
// their unsubscribe, emit, when(), and mirror() writing keys into a dataset-like object.
// Run with: node --test tests/js/

import { test } from "node:test";
import assert from "node:assert/strict";
import { Store, mirror } from "../../src/convscope/server/static/js/store.js";

test("get returns the initial values; set changes one and tells its listeners (value, old)", () => {
  const s = new Store({ view: "network", model: null });
  assert.equal(s.get("view"), "network");
  assert.equal(s.get("model"), null);
  const heard = [];
  s.on("view", (v, old) => heard.push([v, old]));
  s.set("view", "training");
  s.set("model", "tiny");  // another key: not heard
  assert.deepEqual(heard, [["training", "network"]]);
  assert.equal(s.get("view"), "training");
  assert.equal(s.get("model"), "tiny");
});

test("setting the value a key already has tells no one; emit repeats it on purpose", () => {
  const s = new Store({ overview: "ready", n: NaN });
  const heard = [];
  s.on("overview", (v) => heard.push(v));
  s.on("n", (v) => heard.push(v));
  s.set("overview", "ready");
  s.set("n", NaN);  // Object.is: NaN is NaN
  assert.deepEqual(heard, []);
  s.emit("overview");
  assert.deepEqual(heard, ["ready"]);
});

test("update sets from the current value", () => {
  const s = new Store({ overview: "loading", count: 1 });
  s.update("overview", (v) => (v === "loading" ? "error" : v));
  s.update("count", (n) => n + 1);
  assert.equal(s.get("overview"), "error");
  assert.equal(s.get("count"), 2);
  s.update("overview", (v) => (v === "loading" ? "error" : v));  // not loading: unchanged
  assert.equal(s.get("overview"), "error");
});

test("on returns an unsubscribe that stops only that listener", () => {
  const s = new Store({ k: 0 });
  const a = [], b = [];
  const offA = s.on("k", (v) => a.push(v));
  s.on("k", (v) => b.push(v));
  s.set("k", 1);
  offA();
  offA();  // twice is harmless
  s.set("k", 2);
  assert.deepEqual(a, [1]);
  assert.deepEqual(b, [1, 2]);
});

test("a listener may unsubscribe itself or subscribe another while being told", () => {
  const s = new Store({ k: 0 });
  const heard = [];
  const off = s.on("k", (v) => { heard.push(`once ${v}`); off(); s.on("k", (w) => heard.push(`late ${w}`)); });
  s.on("k", (v) => heard.push(`always ${v}`));
  s.set("k", 1);  // the listener added meanwhile hears the next change, not this one
  s.set("k", 2);
  assert.deepEqual(heard, ["once 1", "always 1", "always 2", "late 2"]);
});

test("a listener that throws does not keep the others from hearing; its error goes to onError", () => {
  const errors = [];
  const s = new Store({ k: 0 }, (e) => errors.push(e.message));
  const heard = [];
  s.on("k", () => { throw new Error("broken listener"); });
  s.on("k", (v) => heard.push(v));
  s.set("k", 1);
  assert.deepEqual(heard, [1]);
  assert.equal(s.get("k"), 1);
  assert.deepEqual(errors, ["broken listener"]);
});

test("when resolves at once for a value that holds, else at the first change that does", async () => {
  const s = new Store({ model: null, state: "loading" });
  const already = await s.when("state");
  assert.equal(already, "loading");
  const picked = s.when("model");
  const ready = s.when("state", (v) => v === "ready");
  s.set("state", "error");
  s.set("model", "tiny");
  s.set("state", "ready");
  assert.equal(await picked, "tiny");
  assert.equal(await ready, "ready");
  assert.equal(s.listeners.get("model").size, 0);  // when() unsubscribed itself
  assert.equal(s.listeners.get("state").size, 0);
});

test("mirror writes the keys at once and after every change; null or undefined removes one", () => {
  const s = new Store({ view: "network", overview: "loading", model: "tiny", prediction: undefined });
  const dataset = {};
  const stop = mirror(s, ["view", "overview", "prediction"], dataset);
  assert.deepEqual(dataset, { view: "network", overview: "loading" });  // model is not mirrored
  s.set("overview", "ready");
  s.set("prediction", "7");
  s.set("model", "other");
  assert.deepEqual(dataset, { view: "network", overview: "ready", prediction: "7" });
  s.set("prediction", "");
  assert.equal(dataset.prediction, "");  // an empty word is a value
  s.set("view", null);
  assert.equal("view" in dataset, false);
  stop();
  s.set("overview", "loading");
  assert.equal(dataset.overview, "ready");  // stopped
});
