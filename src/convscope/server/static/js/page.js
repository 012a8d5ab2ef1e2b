// @ts-check
// The page's one store (store.js): the view shown, the model and image picked, and the
// state of each panel. Modules set what they change and subscribe to what they follow;
// nothing reads state back from the DOM. The states are also written on <body> as
// data-* attributes, for the stylesheets (body[data-view], body[data-overview]) and the
// browser tests, which wait on them: written only from here, never read by the page.

import { Store, mirror } from "./store.js";

/**
 * Panel states are words such as "loading", "ready", "error", "closed", "cancelled".
 * @typedef {object} PageState
 * @property {string} view network | training | dataset (tabs.js)
 * @property {string | null} model the model picked (main.js)
 * @property {string | null} image the input image's id (main.js)
 * @property {string} overview the overview's state (main.js)
 * @property {string} detail the detail view's state (main.js)
 * @property {string} details "shown" or "hidden": the overview's names, shapes and legends (main.js)
 * @property {string} [prediction] the top class's name, "" when the output is no class vector
 * @property {string} [warnings] the kinds of input warnings shown beside it, space-separated (main.js)
 * @property {string} [why] the Why? heatmap (why.js)
 * @property {string} [whymetrics] its deletion / insertion metrics
 * @property {string} [sanity] the sanity check
 * @property {string} [lookfor] What does it look for? (lookfor.js)
 * @property {string} [featvis] its activation maximisation
 * @property {string} [examples] its top dataset examples
 * @property {string} [training] the training view (training.js): ready, empty or error
 * @property {string} [snapshot] the epoch whose snapshot is drawn
 * @property {string} [dataset] the dataset view (dataset.js)
 * @property {string} [embedding] its embedding scatter
 * @property {string} [cell] the confusion cell shown, "true,pred"
 * @property {string} [compare] the compare mode (compare.js)
 * @property {string} [comparewhy] its two attributions
 */

/** @type {Store<PageState>} */
export const page = new Store({ view: "network", model: null, image: null, overview: "loading", detail: "closed", details: "shown" });

/** The keys written on <body> as data-KEY (all but model and image). */
const ON_BODY = /** @type {const} */ (["view", "overview", "detail", "details", "prediction", "warnings", "why", "whymetrics", "sanity",
  "lookfor", "featvis", "examples", "training", "snapshot", "dataset", "embedding", "cell", "compare", "comparewhy"]);

mirror(page, [...ON_BODY], document.body.dataset);
