// @ts-check
// Background jobs (dataset passes, embeddings): start one with a POST, then poll
// /api/jobs/{id} and show its progress in a bar until it is done.

import { getJSON, ApiError } from "./api.js";
import { el, html } from "./dom.js";

/** POST (or DELETE) without a body; returns the JSON answer, throws ApiError with the server's message. */
export async function send(method, url) {
  const res = await fetch(url, { method });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new ApiError(res.status, typeof body.detail === "string" ? body.detail : `${res.status} ${res.statusText}`);
  return body;
}

/** @typedef {HTMLDivElement & {set: (done: number, total: number, label: string) => void}} ProgressBar */

/**
 * A progress bar element with set(done, total, text) (total 0: indeterminate).
 * @returns {ProgressBar}
 */
export function progressBar() {
  const box = /** @type {ProgressBar} */ (el("div", "job-progress", html`<div class="job-bar"><span></span></div><span class="job-text"></span>`));
  const fill = /** @type {HTMLElement} */ (box.querySelector(".job-bar span")), text = /** @type {HTMLElement} */ (box.querySelector(".job-text"));
  box.set = (done, total, label) => {
    box.classList.toggle("indeterminate", !total);
    fill.style.width = total ? `${(100 * done) / total}%` : "30%";
    text.textContent = label;
  };
  return box;
}

/** Start a job with POST url, follow it (bar: a progressBar or null) and resolve with the finished job. */
export async function runJob(url, bar, label, interval = 300) {
  let job = await send("POST", url);
  while (!["done", "failed", "cancelled"].includes(job.status)) {
    if (bar) bar.set(job.done, job.total, `${label}: ${job.total ? `${job.done} / ${job.total}` : job.status} · ${job.seconds.toFixed(1)} s`);
    await new Promise((r) => setTimeout(r, interval));
    job = await getJSON(`/api/jobs/${encodeURIComponent(job.id)}`);
  }
  if (job.status !== "done") throw new ApiError(500, `${label} ${job.status}: ${job.error || ""}`);
  if (bar) bar.set(1, 1, `${label}: done in ${job.seconds.toFixed(1)} s`);
  return job;
}
