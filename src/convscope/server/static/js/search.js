// @ts-check
// The top bar's search box: on a 162-layer, 1000-class model, typing a few letters filters the
// class lists (the Why? panel's class menu, the softmax view's rows) and Enter jumps to the next
// layer whose name matches (its folded block opened, its column scrolled into view and marked).
// Escape clears it. Under the box the layer jumped to is named whole (the box itself shows what
// was typed, and a column's head inside a block only the end of the name: "_depthwise_conv" of
// "_blocks.9._depthwise_conv"). Text only: nothing here writes markup.

import { t, liveText } from "./i18n.js";
import { el } from "./dom.js";

/** The longest name the line under the box writes whole (EfficientNet-Lite0's longest: 41). */
const WHOLE = 64;

/**
 * name, or when longer than max its start and its end around "…" (a block's number and the
 * layer's own name are what tell two layers apart; the whole name is the line's title).
 * @param {string} name
 * @param {number} [max]
 */
export function middle(name, max = WHOLE) {
  if (name.length <= max) return name;
  const head = Math.ceil((max - 1) / 2);
  return `${name.slice(0, head)}…${name.slice(name.length - (max - 1 - head))}`;
}

/** Class lists the box filters: an entry stays shown when its text matches. */
const CLASS_LISTS = "#why-class option, .softmax-table tr[data-index]";

/**
 * Whether ``text`` matches ``query`` (case-insensitive, every space-separated word found).
 * @param {string} text
 * @param {string} query
 */
export function matches(text, query) {
  const t = text.toLowerCase();
  return query.toLowerCase().split(/\s+/).filter(Boolean).every((w) => t.includes(w));
}

/**
 * Wire the box: ``getOverview()`` is the current overview (its ``cols`` by layer name and ``fold``).
 * @param {HTMLInputElement} input
 * @param {() => any} getOverview
 */
export function mountSearch(input, getOverview) {
  let last = -1; // the index of the layer jumped to last, so Enter walks through the matches
  const hit = el("output", "search-hit-name");
  hit.hidden = true;
  input.after(hit);
  const unname = () => { hit.hidden = true; delete hit.dataset.layer; };
  const filter = () => {
    const q = input.value.trim();
    document.querySelectorAll(CLASS_LISTS).forEach((n) => {
      /** @type {HTMLElement} */ (n).hidden = q !== "" && !matches(n.textContent || "", q);
    });
    const ov = getOverview();
    const exact = (/** @type {string} */ n) => (n.toLowerCase() === q.toLowerCase() ? 0 : 1);
    // the layer of that very name first, then the others in the network's order
    const names = ov ? [...ov.cols.keys()].filter((name) => q && matches(name, q)).sort((a, b) => exact(a) - exact(b)) : [];
    input.classList.toggle("no-match", q !== "" && names.length === 0 && !document.querySelector(`:is(${CLASS_LISTS}):not([hidden])`));
    input.title = q ? t("page.find_matches", { n: names.length }) : t("page.find_title");
    return names;
  };
  const jump = (/** @type {number} */ step) => {
    const names = filter(), ov = getOverview();
    if (!names.length || !ov) return;
    last = last < 0 ? (step > 0 ? 0 : names.length - 1) : (last + step + names.length) % names.length;
    const col = ov.cols.get(names[last]);
    const group = col.closest(".group.folded");
    if (group) ov.fold(group, false);
    document.querySelectorAll(".column.search-hit").forEach((c) => c.classList.remove("search-hit"));
    col.classList.add("search-hit");
    col.scrollIntoView({ block: "nearest", inline: "center" });
    const name = names[last], at = { i: last + 1, n: names.length };
    liveText(hit, () => `${middle(name)} · ${t("page.find_hit", at)}`);
    hit.title = name;
    hit.dataset.layer = name;
    hit.hidden = false;
  };
  input.addEventListener("input", () => { last = -1; filter(); unname(); });
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") { ev.preventDefault(); jump(ev.shiftKey ? -1 : 1); }
    if (ev.key === "Escape") { input.value = ""; last = -1; filter(); unname(); }
  });
}
