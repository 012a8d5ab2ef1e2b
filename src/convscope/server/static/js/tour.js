// @ts-check
// The first-visit walkthrough: seven steps, each outlining a real element of the page (the
// model picker, the inputs, the overview, a neuron, the colour range, Why?, Learn) with a
// few words from the catalogues' "tour" section. Next / Back / Skip, Escape closes, the
// focus stays on the tour's buttons; once finished or skipped it is remembered in
// localStorage and does not open again by itself ("tour" in the top bar replays it).
//
// A browser driven by automation (navigator.webdriver: the test suite) gets no tour by
// itself, so it cannot cover what other tests click; ?tour=1 in the address lets it open
// there as on a first visit (the tour's own tests use that).

import { el, fill } from "./dom.js";
import { t, onLanguage } from "./i18n.js";
import { page } from "./page.js";

const STORAGE_KEY = "convscope.tour";

/** A neuron of the first layer after the input (the input's own maps open no arithmetic). */
const NEURON = "canvas.neuron[data-channel]:not([data-layer='input'])";

/** Each step: its catalogue key and the element it outlines (the first that exists). */
const STEPS = [
  { key: "model", target: ["#model-select"] },
  { key: "inputs", target: [".inputs"] },
  { key: "overview", target: ["#overview"] },
  { key: "neuron", target: [NEURON, "#overview"] },
  { key: "range", target: [".modes"] },
  { key: "why", target: ["#btn-why"] },
  { key: "learn", target: ["#btn-learn"] },
];

let index = -1;
/** @type {HTMLElement | null} */
let box = null;
/** @type {HTMLElement | null} */
let spot = null;
/** @type {Element | null} */
let before = null;  // the focus before the tour, given back when it closes

/** @returns {boolean} whether this browser has seen the tour to its end or skipped it */
function seen() {
  try { return localStorage.getItem(STORAGE_KEY) === "done"; } catch { return false; }
}

function remember() {
  try { localStorage.setItem(STORAGE_KEY, "done"); } catch { /* storage refused: it may show again */ }
}

/**
 * @param {{target: string[]}} step
 * @returns {HTMLElement | null}
 */
function targetOf(step) {
  for (const sel of step.target) {
    const e = /** @type {HTMLElement | null} */ (document.querySelector(sel));
    if (e && e.getClientRects().length) return e;
  }
  return null;
}

/** Outline the step's element and put the card beside it (below when there is room). */
function place() {
  const step = STEPS[index];
  const target = targetOf(step);
  if (!target || !box || !spot) return;
  target.scrollIntoView({ block: "nearest", inline: "nearest" });
  const r = target.getBoundingClientRect();
  Object.assign(spot.style, { left: `${r.left - 4}px`, top: `${r.top - 4}px`, width: `${r.width + 8}px`, height: `${r.height + 8}px` });
  const card = box.getBoundingClientRect();
  const below = r.bottom + 12 + card.height < innerHeight;
  const top = below ? r.bottom + 12 : Math.max(8, r.top - 12 - card.height);
  const left = Math.min(Math.max(8, r.left), innerWidth - card.width - 8);
  Object.assign(box.style, { left: `${left}px`, top: `${Math.max(8, Math.min(top, innerHeight - card.height - 8))}px` });
  box.dataset.target = step.target[0];
}

/** Draw the current step's card. */
function draw() {
  if (!box) return;
  const step = STEPS[index];
  const title = el("h2", "", t(`tour.${step.key}.title`));
  title.id = "tour-title";
  const text = el("p", "", t(`tour.${step.key}.text`));
  text.id = "tour-text";
  const back = el("button", "tool", t("tour.back"));
  back.disabled = index === 0;
  back.onclick = () => go(index - 1);
  const last = index === STEPS.length - 1;
  const next = el("button", "tool primary", t(last ? "tour.done" : "tour.next"));
  next.onclick = () => (last ? endTour() : go(index + 1));
  next.dataset.k = "next";
  const skip = el("button", "link", t("tour.skip"));
  skip.onclick = () => endTour();
  fill(box, el("div", "tour-count note", t("tour.count", { i: index + 1, n: STEPS.length })), title, text,
    el("div", "tour-buttons", [skip, el("span", "spacer"), back, next]));
  box.dataset.step = String(index);
  box.dataset.key = step.key;
  place();
  next.focus();
}

/**
 * Tab and Shift+Tab cycle through the card's buttons while the tour is open (what it outlines
 * stays visible; Escape or Skip leave it).
 * @param {KeyboardEvent} ev
 */
function keepFocus(ev) {
  const buttons = [...box.querySelectorAll("button:not([disabled])")];
  const i = buttons.indexOf(/** @type {Element} */ (document.activeElement));
  const next = (i + (ev.shiftKey ? -1 : 1) + buttons.length) % buttons.length;
  ev.preventDefault();
  /** @type {HTMLElement} */ (buttons[next]).focus();
}

/** @param {number} i */
function go(i) {
  index = Math.max(0, Math.min(STEPS.length - 1, i));
  draw();
}

/** Start the tour at its first step. */
export function startTour() {
  if (box) return go(0);
  before = document.activeElement;
  spot = el("div", "tour-spot");
  box = el("div", "tour-card");
  box.id = "tour";
  box.setAttribute("role", "dialog");
  box.setAttribute("aria-labelledby", "tour-title");
  box.setAttribute("aria-describedby", "tour-text");
  box.addEventListener("keydown", (ev) => {
    if (ev.key === "Tab") keepFocus(ev);
    else if (ev.key === "Escape") { ev.stopPropagation(); endTour(); }
    else if (ev.key === "ArrowRight") go(index + 1);
    else if (ev.key === "ArrowLeft") go(index - 1);
  });
  document.body.append(spot, box);
  document.body.dataset.tour = "open";
  addEventListener("resize", place);
  go(0);
}

/** Close the tour (finished, skipped or Escape) and remember it was seen. */
export function endTour() {
  remember();
  box?.remove();
  spot?.remove();
  box = spot = null;
  index = -1;
  document.body.dataset.tour = "closed";
  removeEventListener("resize", place);
  if (before instanceof HTMLElement) before.focus();
}

/**
 * The "tour" button in the top bar, and the tour itself on a first visit once the overview is drawn.
 * @param {Element} bar
 */
export function mountTour(bar) {
  const b = el("button", "tool", t("tour.button"));
  b.id = "btn-tour";
  b.title = t("tour.buttonTitle");
  b.onclick = () => startTour();
  bar.appendChild(b);
  document.addEventListener("keydown", (ev) => {  // Escape with the focus elsewhere closes it too
    if (ev.key === "Escape" && box) endTour();
  });
  onLanguage(() => {
    b.textContent = t("tour.button");
    b.title = t("tour.buttonTitle");
    if (box) draw();
  });
  const automated = navigator.webdriver && new URLSearchParams(location.search).get("tour") !== "1";
  if (seen() || automated) { document.body.dataset.tour = "closed"; return; }
  page.when("overview", (s) => s === "ready").then(() => { if (!seen() && !box) startTour(); });
}
