// @ts-check
// The page by keyboard alone: canvases that act as buttons, and Escape for the panels.
//
// A neuron map is a canvas whose click reads the pointer's position; a key press has no
// position, so Enter or Space clicks the canvas's centre and whatever a click does happens.
// Escape closes panels through their own close buttons, so each panel's closing logic
// (the page store's state, the selection) stays in one place.

/** The panels Escape closes, each by its `.close` button. */
const PANELS = ["detail", "playground", "summary", "why", "lookfor", "compare"];

/**
 * Make a canvas reachable by Tab and pressable with Enter or Space, under a spoken name.
 * @param {HTMLElement} target
 * @param {string} label
 */
export function pressable(target, label) {
  target.tabIndex = 0;
  target.setAttribute("role", "button");
  target.setAttribute("aria-label", label);
  target.addEventListener("keydown", (ev) => {
    if (ev.key !== "Enter" && ev.key !== " ") return;
    ev.preventDefault();
    const r = target.getBoundingClientRect();
    target.dispatchEvent(new MouseEvent("click", { bubbles: true, clientX: r.left + r.width / 2, clientY: r.top + r.height / 2 }));
  });
}

/**
 * Escape closes the open panel that holds the focus, or every open panel when none does.
 * @param {Document} doc
 */
export function closeOnEscape(doc) {
  doc.addEventListener("keydown", (ev) => {
    if (ev.key !== "Escape") return;
    const open = PANELS.map((id) => doc.getElementById(id)).filter((p) => p && !p.hidden);
    const holder = open.find((p) => p?.contains(doc.activeElement));
    for (const p of holder ? [holder] : open) {
      /** @type {HTMLElement | null | undefined} */ (p?.querySelector(".close"))?.click();
    }
  });
}
