// @ts-check
// One background job at a time for a panel: start it, show its progress bar and a cancel
// button, poll /api/jobs/{id} until it ends. Starting a new run abandons (and cancels) the
// previous one, so a panel never shows a stale result.

import { getJSON, ApiError } from "./api.js";
import { send, progressBar } from "./jobs.js";

export class Task {
  /** host: the element that holds the bar and the cancel button; label: what the bar says. */
  constructor(host, label, interval = 250) {
    this.host = host;
    this.label = label;
    this.interval = interval;
    this.job = null;
    this.generation = 0;
  }

  get running() {
    return !!this.job && !["done", "failed", "cancelled"].includes(this.job.status);
  }

  /**
   * POST url and follow the job. Resolves with the result, or null when it was cancelled
   * or superseded by a newer run; rejects with the job's error message when it failed.
   */
  async run(url, label = this.label) {
    this.abandon();
    const gen = ++this.generation;
    const bar = progressBar();
    const cancel = document.createElement("button");
    cancel.className = "link task-cancel";
    cancel.textContent = "cancel";
    cancel.onclick = () => this.cancel();
    this.host.replaceChildren(bar, cancel);
    this.host.hidden = false;
    this.host.dataset.state = "running";
    let job = await send("POST", url);
    this.job = job;
    this.host.dataset.job = job.id;
    while (!["done", "failed", "cancelled"].includes(job.status)) {
      const count = job.total ? `${Math.round((100 * job.done) / job.total)}%` : job.status;
      bar.set(job.done, job.total, `${label}: ${count} · ${job.seconds.toFixed(1)} s`);
      await new Promise((r) => setTimeout(r, this.interval));
      if (gen !== this.generation) return null;
      job = await getJSON(`/api/jobs/${encodeURIComponent(job.id)}`);
      if (gen !== this.generation) return null;
      this.job = job;
    }
    this.host.dataset.state = job.status;
    if (job.status === "cancelled") {
      this.host.replaceChildren(Object.assign(document.createElement("span"), { className: "note", textContent: `${label}: cancelled` }));
      return null;
    }
    this.host.replaceChildren();
    this.host.hidden = true;
    if (job.status === "failed") throw new ApiError(400, job.error || `${label} failed`);
    return job.result;
  }

  /** Ask the server to stop the running job (the poll loop then sees it cancelled). */
  async cancel() {
    if (!this.running) return;
    const id = this.job.id;
    this.host.querySelector(".task-cancel")?.setAttribute("disabled", "");
    await send("DELETE", `/api/jobs/${encodeURIComponent(id)}`);
  }

  /** Stop following the current job, cancelling it on the server when it still runs. */
  abandon() {
    this.generation++;
    if (this.running) send("DELETE", `/api/jobs/${encodeURIComponent(this.job.id)}`).catch(() => {});
    this.job = null;
    this.host.replaceChildren();
    this.host.hidden = true;
    delete this.host.dataset.state;
    delete this.host.dataset.job;
  }
}
