// @ts-check
// One background job at a time for a panel: start it, show its progress bar and a cancel
// button while jobs.js's follow() watches it to its end. Starting a new run abandons (and
// cancels) the previous one, so a panel never shows a stale result. The host element
// carries data-state and data-job for the browser tests; the panels read task.state.

import { ApiError } from "./api.js";
import { send, follow, finished, cancelJob, progressBar, progressWords, words } from "./jobs.js";
import { el } from "./dom.js";
import { t, liveText } from "./i18n.js";

export class Task {
  /**
   * @param {HTMLElement} host the element that holds the bar and the cancel button
   * @param {import("./jobs.js").Words} label what the bar says (a function: said again after a language switch)
   * @param {number} [interval] the first (shortest) wait between polls, ms
   */
  constructor(host, label, interval = 250) {
    this.host = host;
    this.label = label;
    this.interval = interval;
    /** @type {import("./jobs.js").Job | null} */
    this.job = null;
    /** @type {AbortController | null} */
    this.control = null;
    /** @type {string | null} running, done, failed, cancelled; null: nothing run (or abandoned) */
    this.state = null;
  }

  get running() {
    return !!this.job && !finished(this.job);
  }

  /** @param {string | null} state */
  setState(state) {
    this.state = state;
    if (state === null) delete this.host.dataset.state;
    else this.host.dataset.state = state;
  }

  /**
   * POST url and follow the job. Resolves with the result, or null when it was cancelled
   * or superseded by a newer run; rejects with the job's error message when it failed.
   * @param {string} url
   * @param {import("./jobs.js").Words} [label]
   */
  async run(url, label = this.label) {
    this.abandon();
    const control = new AbortController();
    this.control = control;
    const bar = progressBar();
    const cancel = el("button", "link task-cancel");
    liveText(cancel, () => t("widgets.cancel"));
    cancel.onclick = () => this.cancel();
    this.host.replaceChildren(bar, cancel);
    this.host.hidden = false;
    this.setState("running");
    const started = await send("POST", url);
    if (!control.signal.aborted) {
      this.job = started;
      this.host.dataset.job = started.id;
    }
    const job = await follow(started, {
      signal: control.signal,
      min: this.interval,
      onProgress: (j) => {
        this.job = j;
        bar.set(j.done, j.total, progressWords(label, j, `${Math.round((100 * j.done) / (j.total || 1))}%`));
      },
    });
    if (job === null) return null;  // abandoned: a newer run owns the host now
    this.job = job;
    this.setState(job.status);
    if (job.status === "cancelled") {
      const note = el("span", "note");
      liveText(note, () => t("widgets.cancelled", { label: words(label) }));
      this.host.replaceChildren(note);
      return null;
    }
    this.host.replaceChildren();
    this.host.hidden = true;
    if (job.status === "failed") throw new ApiError(400, job.error || t("widgets.failed", { label: words(label) }));
    return job.result;
  }

  /** Ask the server to stop the running job (the follower then sees it cancelled). */
  async cancel() {
    if (!this.running) return;
    this.host.querySelector(".task-cancel")?.setAttribute("disabled", "");
    await cancelJob(this.job.id);
  }

  /** Stop following the current job, cancelling it on the server when it still runs. */
  abandon() {
    this.control?.abort();  // follow() cancels the job it follows
    this.control = null;
    this.job = null;
    this.host.replaceChildren();
    this.host.hidden = true;
    this.setState(null);
    delete this.host.dataset.job;
  }
}
