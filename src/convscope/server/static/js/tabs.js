// @ts-check
// The page's three views: the network explorer (main.js), training runs and the dataset.
// The view is kept in the address (?view=training) so a reload or a shared link returns
// to it, and in the page's store, where the stylesheet's body[data-view] reads it; the
// training and dataset modules load the first time their tab is opened.

import { byId as $ } from "./dom.js";
import { page } from "./page.js";

/** The views' controllers, each made (its module loaded) once, on first use. */
const views = {
  /** @type {Promise<import("./training.js").TrainingView> | null} */
  training: null,
  /** @type {Promise<import("./dataset.js").DatasetView> | null} */
  dataset: null,
};

/** @param {string} view */
async function show(view) {
  if (!["network", "training", "dataset"].includes(view)) view = "network";
  page.set("view", view);
  tabButtons().forEach((b) => b.classList.toggle("active", b.dataset.view === view));
  $("training-view").hidden = view !== "training";
  $("dataset-view").hidden = view !== "dataset";
  const url = new URL(location.href);
  if (view === "network") url.searchParams.delete("view");
  else url.searchParams.set("view", view);
  history.replaceState(null, "", url);
  if (views.training && view !== "training") (await views.training).stop();
  if (view === "training") {
    views.training ||= import("./training.js").then(({ TrainingView }) => new TrainingView($("training-view")));
    await (await views.training).start();
  } else if (view === "dataset") {
    views.dataset ||= import("./dataset.js").then(({ DatasetView }) => new DatasetView($("dataset-view")));
    const dataset = await views.dataset;
    const model = await page.when("model");  // main.js picks it once the model list arrives
    if (page.get("view") === "dataset" && dataset.shownFor !== model) {
      dataset.shownFor = model;
      await dataset.start();
    }
  }
}

/** @returns {NodeListOf<HTMLElement>} */
function tabButtons() {
  return document.querySelectorAll(".tabs [data-view]");
}

tabButtons().forEach((b) => { b.onclick = () => show(b.dataset.view); });
// the dataset view shows the picked model: another pick while it is open redraws it
page.on("model", () => { if (page.get("view") === "dataset") show("dataset"); });
show(new URLSearchParams(location.search).get("view") || "network");
