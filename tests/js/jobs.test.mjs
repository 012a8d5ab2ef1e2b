// The page's one job follower (static/js/jobs.js), without a browser: the backoff between
// polls, and follow() against a scripted /api/jobs/{id} (fetch replaced by a fake server):
// progress, done, failed, abort (the job is cancelled with DELETE, or left running with
// cancel: false), a job finished in the POST answer, and a job the server no longer knows.
// Run with: node --test tests/js/

import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";

// api.js takes an access token out of the address bar when it loads: give it an address
globalThis.location = new URL("http://127.0.0.1:8000/");
globalThis.history = { state: null, replaceState() {} };
const { follow, nextDelay, finished } = await import("../../src/convscope/server/static/js/jobs.js");

const job = (status, done = 0, more = {}) => ({ id: "j1", kind: "explain", status, done, total: 3, error: null, seconds: 0.1, ...more });

/** A fake server: answers GET /api/jobs/j1 with the scripted states in turn, records every request. */
function serve(states) {
  const requests = [];
  globalThis.fetch = async (url, opts = {}) => {
    const method = opts.method || "GET";
    requests.push(`${method} ${url}`);
    if (url !== "/api/jobs/j1") return answer(404, { detail: `no job ${url}` });
    if (method === "DELETE") return answer(200, job("cancelled"));
    return states.length ? answer(200, states.shift()) : answer(404, { detail: "job j1 is gone" });
  };
  return requests;
}

function answer(status, body) {
  return { ok: status < 400, status, statusText: status < 400 ? "OK" : "Not Found", json: async () => body };
}

// every wait follow() asks for is recorded and ended at once, so the tests take no time
let waits, realSetTimeout;
beforeEach(() => {
  waits = [];
  realSetTimeout = globalThis.setTimeout;
  globalThis.setTimeout = (fn, ms) => { waits.push(ms); return realSetTimeout(fn, 0); };
});
afterEach(() => { globalThis.setTimeout = realSetTimeout; });

test("backoff: back to min when the job moved, else factor times longer, between min and max", () => {
  assert.equal(nextDelay(800, true), 250);
  assert.equal(nextDelay(250, false), 375);
  assert.equal(nextDelay(375, false), 562.5);
  assert.equal(nextDelay(900, false), 1000);   // capped
  assert.equal(nextDelay(1000, false), 1000);
  assert.equal(nextDelay(10, false), 250);     // never below min
  assert.equal(nextDelay(100, false, { min: 100, max: 400, factor: 2 }), 200);
  let d = 250;
  for (let i = 0; i < 50; i++) d = nextDelay(d, false);
  assert.equal(d, 1000);
});

test("the end states", () => {
  assert.deepEqual(["queued", "running", "done", "failed", "cancelled"].map((s) => finished(job(s))),
    [false, false, true, true, true]);
});

test("follow polls until done: progress before each wait, the result once done, waits back off while nothing moves", async () => {
  const requests = serve([job("queued"), job("running"), job("running", 1), job("running", 1), job("running", 1),
    job("running", 2), job("done", 3, { result: { answer: 42 } })]);
  const progress = [], done = [];
  const end = await follow(job("queued"), {
    onProgress: (j) => progress.push(`${j.status} ${j.done}`),
    onDone: (result, j) => done.push([result, j.status]),
    onError: () => assert.fail("not failed"),
  });
  assert.equal(end.status, "done");
  assert.deepEqual(done, [[{ answer: 42 }, "done"]]);
  assert.deepEqual(progress, ["queued 0", "queued 0", "running 0", "running 1", "running 1", "running 1", "running 2"]);
  // queued twice: longer; running: moved; 1: moved; 1, 1: longer, longer; 2: moved
  assert.deepEqual(waits, [250, 375, 250, 250, 375, 562.5, 250]);
  assert.equal(requests.length, 7);
  assert.ok(requests.every((r) => r === "GET /api/jobs/j1"));
});

test("a failed job: onError with the server's message, resolved with the job, not rejected", async () => {
  serve([job("running", 1), job("failed", 1, { error: "layer 'x' has no spatial output" })]);
  const errors = [];
  const end = await follow(job("running"), {
    onDone: () => assert.fail("not done"), onError: (e, j) => errors.push([e.message, j.status]),
  });
  assert.equal(end.status, "failed");
  assert.deepEqual(errors, [["layer 'x' has no spatial output", "failed"]]);
});

test("a cancelled job ends the follow with neither onDone nor onError", async () => {
  serve([job("cancelled", 1)]);
  const end = await follow(job("running"), { onDone: () => assert.fail("done"), onError: () => assert.fail("failed") });
  assert.equal(end.status, "cancelled");
});

test("abort: the follow resolves null at once, the running job is cancelled (DELETE), no more polls", async () => {
  const requests = serve([job("running", 1), job("running", 2), job("running", 3), job("done", 3)]);
  const control = new AbortController();
  let calls = 0;
  const end = await follow(job("queued"), {
    signal: control.signal,
    onProgress: () => { if (++calls === 2) control.abort(); },
    onDone: () => assert.fail("abandoned"),
  });
  assert.equal(end, null);
  await new Promise((r) => realSetTimeout(r, 10));  // the DELETE is sent without waiting for its answer
  assert.deepEqual(requests, ["GET /api/jobs/j1", "DELETE /api/jobs/j1"]);
  assert.equal(waits.length, 1);  // the wait after the abort did not happen
});

test("a signal aborted before the follow starts: null, and the job is cancelled unless cancel: false", async () => {
  let requests = serve([]);
  const aborted = AbortSignal.abort();
  assert.equal(await follow(job("running"), { signal: aborted }), null);
  await new Promise((r) => realSetTimeout(r, 10));
  assert.deepEqual(requests, ["DELETE /api/jobs/j1"]);
  requests = serve([]);
  assert.equal(await follow(job("running"), { signal: aborted, cancel: false }), null);
  assert.equal(await follow(job("done"), { signal: aborted }), null);  // nothing to cancel
  await new Promise((r) => realSetTimeout(r, 10));
  assert.deepEqual(requests, []);
});

test("cancel: false stops following a shared job without cancelling it", async () => {
  const requests = serve([job("running", 1), job("running", 2)]);
  const control = new AbortController();
  const end = await follow(job("running"), { signal: control.signal, cancel: false, onProgress: (j) => { if (j.done === 1) control.abort(); } });
  assert.equal(end, null);
  await new Promise((r) => realSetTimeout(r, 10));
  assert.deepEqual(requests, ["GET /api/jobs/j1"]);
});

test("a job the POST answered as done is not polled", async () => {
  const requests = serve([]);
  const results = [];
  const end = await follow(job("done", 3, { result: [1, 2] }), { onDone: (r) => results.push(r), onProgress: () => assert.fail("no progress") });
  assert.equal(end.status, "done");
  assert.deepEqual(results, [[1, 2]]);
  assert.deepEqual(requests, []);
  assert.deepEqual(waits, []);
});

test("a job the server no longer knows rejects with the server's message", async () => {
  serve([job("running", 1)]);
  await assert.rejects(follow(job("running")), (e) => e.message === "job j1 is gone" && e.status === 404);
});
