// @ts-check
// Background jobs (dataset passes, embeddings, explanations, sanity checks, feature
// visualisations, example rankings): the server answers a POST with a job, and follow()
// is the one place that watches a job to its end: it polls /api/jobs/{id}, backing off
// while the job reports no progress, and an aborted signal stops it and cancels the job on
// the server (DELETE). task.js puts a job's progress bar and cancel button on a panel.

import { getJSON, ApiError } from "./api.js";
import { el, html } from "./dom.js";
import { t, liveText } from "./i18n.js";

/** @typedef {string | (() => string)} Words a text, or how to say it in the language shown (a bar redraws it on a switch) */

/**
 * @param {Words} w
 * @returns {string} the text now
 */
export const words = (w) => (typeof w === "function" ? w() : w);

/**
 * How a running job's bar reads: its label, how far it is (count, or its status while it
 * reports no steps) and its seconds, said in whichever language is shown when it is drawn.
 * @param {Words} label
 * @param {Job} j
 * @param {string} count
 * @returns {() => string}
 */
export const progressWords = (label, j, count) => () =>
  t("widgets.progress", { label: words(label), count: j.total ? count : t(`widgets.status.${j.status}`), s: j.seconds.toFixed(1) });

/**
 * A job as /api/jobs/{id} describes it (server/jobs.py).
 * @typedef {object} Job
 * @property {string} id
 * @property {string} [kind]
 * @property {"queued" | "running" | "done" | "failed" | "cancelled"} status
 * @property {number} done steps done so far
 * @property {number} total steps in all (0: unknown)
 * @property {string | null} [error] why it failed
 * @property {number} seconds since it started (until it ended)
 * @property {any} [result] a finished job's answer, when it is JSON
 */

/** The states a job never leaves. */
export const ENDS = ["done", "failed", "cancelled"];

/** @param {Job} job */
export const finished = (job) => ENDS.includes(job.status);

/**
 * The wait before the next poll: back to `min` when the job moved since the last one,
 * else `factor` times longer, up to `max`. A job that reports steps is followed closely; a
 * long one without steps (or one still queued behind others) is asked less and less often.
 * @param {number} delay the last wait (ms)
 * @param {boolean} moved whether the job's state or step count changed since the last poll
 * @param {{min?: number, max?: number, factor?: number}} [opts]
 */
export function nextDelay(delay, moved, { min = 250, max = 1000, factor = 1.5 } = {}) {
  return moved ? min : Math.min(max, Math.max(min, delay * factor));
}

/** POST (or DELETE) without a body; returns the JSON answer, throws ApiError with the server's message. */
export async function send(method, url) {
  const res = await fetch(url, { method });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new ApiError(res.status, typeof body.detail === "string" ? body.detail : `${res.status} ${res.statusText}`);
  return body;
}

const jobUrl = (id) => `/api/jobs/${encodeURIComponent(id)}`;

/**
 * Ask the server to stop a job (it stops at its next step); resolves with its state then.
 * @param {string} id
 * @returns {Promise<Job>}
 */
export const cancelJob = (id) => send("DELETE", jobUrl(id));

/**
 * @typedef {object} FollowOptions
 * @property {(job: Job) => void} [onProgress] called with the job before every wait, while it runs
 * @property {(result: any, job: Job) => void} [onDone] called once it is done
 * @property {(error: Error, job: Job) => void} [onError] called once it failed, with its error as an ApiError
 * @property {AbortSignal} [signal] abort: stop following, and cancel the job if it still runs
 * @property {boolean} [cancel] false: an abort only stops following (work the server shares by key)
 * @property {number} [min] the first and shortest wait between polls (ms)
 * @property {number} [max] the longest wait (ms)
 */

/**
 * Follow a job (as a POST answered it) until it ends. Resolves with the ended job, whatever
 * its status (done, failed or cancelled; onDone / onError tell the first two apart), or
 * with null when `signal` aborted first. Rejects only when polling itself fails (the server
 * is gone, or no longer knows the job).
 * @param {Job} job
 * @param {FollowOptions} [opts]
 * @returns {Promise<Job | null>}
 */
export async function follow(job, { onProgress, onDone, onError, signal, cancel = true, min = 250, max = 1000 } = {}) {
  let latest = job;
  const abandon = () => { if (cancel && !finished(latest)) cancelJob(latest.id).catch(() => {}); };
  if (signal?.aborted) {
    abandon();
    return null;
  }
  signal?.addEventListener("abort", abandon, { once: true });
  try {
    let delay = min;
    while (!finished(latest)) {
      onProgress?.(latest);
      await sleep(delay, signal);
      if (signal?.aborted) return null;
      const next = await getJSON(jobUrl(latest.id));
      if (signal?.aborted) return null;
      delay = nextDelay(delay, next.status !== latest.status || next.done !== latest.done, { min, max });
      latest = next;
    }
  } finally {
    signal?.removeEventListener("abort", abandon);
  }
  if (latest.status === "done") onDone?.(latest.result, latest);
  else if (latest.status === "failed") onError?.(new ApiError(400, latest.error || t("widgets.failed", { label: latest.kind || t("widgets.job") })), latest);
  return latest;
}

/**
 * Wait ms, or less when the signal aborts meanwhile.
 * @param {number} ms
 * @param {AbortSignal} [signal]
 * @returns {Promise<void>}
 */
function sleep(ms, signal) {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => { clearTimeout(timer); signal?.removeEventListener("abort", done); resolve(); };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** @typedef {HTMLDivElement & {set: (done: number, total: number, label: Words) => void}} ProgressBar */

/**
 * A progress bar element with set(done, total, text) (total 0: indeterminate). A text given
 * as a function is said again after a language switch (i18n.liveText), so a running job's
 * line does not keep the old language until the job ends.
 * @returns {ProgressBar}
 */
export function progressBar() {
  const box = /** @type {ProgressBar} */ (el("div", "job-progress", html`<div class="job-bar"><span></span></div><span class="job-text"></span>`));
  const fill = /** @type {HTMLElement} */ (box.querySelector(".job-bar span")), text = /** @type {HTMLElement} */ (box.querySelector(".job-text"));
  box.set = (done, total, label) => {
    box.classList.toggle("indeterminate", !total);
    fill.style.width = total ? `${(100 * done) / total}%` : "30%";
    liveText(text, typeof label === "function" ? label : () => label);
  };
  return box;
}

/**
 * Start a job with POST url and follow it, showing its steps in bar (a progressBar, or
 * null). Resolves with the job once done, or null when signal aborted first; throws an
 * ApiError when it failed or was cancelled. For the dataset view's passes and embeddings:
 * the server shares these by key (another page may follow the same one) and keeps their
 * results, so abandoning one stops following it but leaves it running.
 * @param {string} url
 * @param {ProgressBar | null} bar
 * @param {Words} label what the bar says
 * @param {AbortSignal} [signal]
 * @returns {Promise<Job | null>}
 */
export async function runJob(url, bar, label, signal) {
  const job = await follow(await send("POST", url), {
    signal, cancel: false,
    onProgress: (j) => bar?.set(j.done, j.total, progressWords(label, j, `${j.done} / ${j.total}`)),
  });
  if (job === null) return null;
  if (job.status !== "done") throw new ApiError(500, `${words(label)} ${t(`widgets.status.${job.status}`)}: ${job.error || ""}`);
  bar?.set(1, 1, () => t("widgets.done_in", { label: words(label), s: job.seconds.toFixed(1) }));
  return job;
}
