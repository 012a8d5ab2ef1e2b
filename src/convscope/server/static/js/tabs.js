// @ts-check
// The page's three views: the network explorer (main.js), training runs and the dataset.
// The view is kept in the address (?view=training) so a reload or a shared link returns
// to it; the training and dataset modules load the first time their tab is opened.

import { byId as $ } from "./dom.js";

/** The model picker's value (main.js fills it). */
const pickedModel = () => /** @type {HTMLSelectElement} */ ($("model-select")).value;
const views = { training: null, dataset: null };

async function show(view) {
  if (!["network", "training", "dataset"].includes(view)) view = "network";
  document.body.dataset.view = view;
  tabButtons().forEach((b) => b.classList.toggle("active", b.dataset.view === view));
  $("training-view").hidden = view !== "training";
  $("dataset-view").hidden = view !== "dataset";
  const url = new URL(location.href);
  if (view === "network") url.searchParams.delete("view");
  else url.searchParams.set("view", view);
  history.replaceState(null, "", url);
  if (views.training && view !== "training") views.training.stop();
  if (view === "training") {
    if (!views.training) {
      const { TrainingView } = await import("./training.js");
      views.training = new TrainingView($("training-view"));
    }
    await views.training.start();
  } else if (view === "dataset") {
    if (!views.dataset) {
      const { DatasetView } = await import("./dataset.js");
      views.dataset = new DatasetView($("dataset-view"));
    }
    await whenModelPicked();
    if (views.dataset.shownFor !== pickedModel()) {
      views.dataset.shownFor = pickedModel();
      await views.dataset.start();
    }
  }
}

/** @returns {NodeListOf<HTMLElement>} */
function tabButtons() {
  return document.querySelectorAll(".tabs [data-view]");
}

function whenModelPicked() {
  // main.js fills the model picker; the dataset view needs its value
  return new Promise((/** @type {(v?: unknown) => void} */ resolve) => {
    const check = () => (pickedModel() ? resolve() : setTimeout(check, 50));
    check();
  });
}

tabButtons().forEach((b) => { b.onclick = () => show(b.dataset.view); });
$("model-select").addEventListener("change", () => {
  if (document.body.dataset.view === "dataset") show("dataset");
});
show(new URLSearchParams(location.search).get("view") || "network");
