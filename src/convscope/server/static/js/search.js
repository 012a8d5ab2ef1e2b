// @ts-check
// The top bar's search box: on a 162-layer, 1000-class model, typing a few letters filters the
// class lists (the Why? panel's class menu, the softmax view's rows) and Enter jumps to the next
// layer whose name matches (its folded block opened, its column scrolled into view and marked).
// Escape clears it. Text only: nothing here writes markup.

import { t } from "./i18n.js";

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
  };
  input.addEventListener("input", () => { last = -1; filter(); });
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") { ev.preventDefault(); jump(ev.shiftKey ? -1 : 1); }
    if (ev.key === "Escape") { input.value = ""; last = -1; filter(); }
  });
}
