// @ts-check
// The page's words, in the reader's language: one catalogue per language
// (/static/i18n/<lang>.json, the same files convscope's Python reads for the sentences it
// writes), looked up by key. No module writes a sentence of its own: it asks t(key, params).
//
// The language is the reader's choice (the switch, kept in localStorage), else the first
// of the browser's languages we have a catalogue for, else English. A key missing from a
// catalogue falls back to English, and a key missing from English shows as the key itself,
// so a gap is visible rather than blank (tests look for both).
//
// Catalogue values are plain text with {name} placeholders; params are data (class names,
// layer names, numbers) and are put in as text, never parsed. A value may be an object of
// plural forms ({"one": "...", "other": "..."}) chosen by Intl.PluralRules on params.n.

/** The languages we ship, in the order the switch lists them. */
export const LANGUAGES = /** @type {const} */ ([
  { code: "en", name: "English" },
  { code: "zh-CN", name: "简体中文" },
]);

const STORAGE_KEY = "convscope.lang";

/** @typedef {{[key: string]: string | Catalogue | {[form: string]: string}}} Catalogue */

/** @type {Catalogue} */
let english = {};
/** @type {Catalogue} */
let current = {};
let code = "en";
/** @type {Set<(lang: string) => void>} */
const listeners = new Set();

/**
 * The catalogue code for a BCP 47 tag, or null: zh, zh-CN, zh-Hans, zh-SG read Simplified Chinese.
 * @param {string} tag
 * @returns {string | null}
 */
export function match(tag) {
  const t = String(tag || "").toLowerCase();
  if (t === "en" || t.startsWith("en-")) return "en";
  if (t === "zh" || t === "zh-cn" || t === "zh-sg" || t.startsWith("zh-hans")) return "zh-CN";
  return null;
}

/**
 * The language to show: the saved choice, else the browser's first we have, else English.
 * @returns {string}
 */
export function preferred() {
  // ?lang=zh-CN in the address wins (a link or a test names the language), without being remembered
  const asked = match(new URLSearchParams(location.search).get("lang") || "");
  if (asked) return asked;
  let saved = null;
  try { saved = localStorage.getItem(STORAGE_KEY); } catch { /* storage refused: fall through */ }
  const fromSaved = saved && match(saved);
  if (fromSaved) return fromSaved;
  for (const tag of navigator.languages || [navigator.language]) {
    const m = match(tag);
    if (m) return m;
  }
  return "en";
}

/**
 * @param {string} lang
 * @returns {Promise<Catalogue>}
 */
async function fetchCatalogue(lang) {
  const r = await fetch(`/static/i18n/${lang}.json`);
  if (!r.ok) throw new Error(`no catalogue for ${lang} (${r.status})`);
  return r.json();
}

/**
 * Load the catalogues for lang (English too, as the fallback) and make it current.
 * @param {string} [lang]
 * @returns {Promise<string>} the language now shown
 */
export async function setLanguage(lang = preferred()) {
  const want = match(lang) || "en";
  const [en, cur] = await Promise.all([
    Object.keys(english).length ? english : fetchCatalogue("en"),
    want === "en" ? null : fetchCatalogue(want).catch(() => null),
  ]);
  english = en;
  current = cur || en;
  code = cur ? want : "en";
  document.documentElement.lang = code;
  translatePage(document);
  listeners.forEach((f) => f(code));
  // after the listeners: a view that redrew re-attached the live texts it keeps
  document.querySelectorAll("[data-i18n-live]").forEach((n) => { const words = liveTexts.get(n); if (words) n.textContent = words(); });
  return code;
}

/** @type {WeakMap<Node, () => string>} a live text's words (a node the page dropped is forgotten with it) */
const liveTexts = new WeakMap();

/**
 * Write words() into node now, and again after every language switch. For a text a module
 * rewrites on its own schedule (a running job's progress line, rewritten at each poll): the
 * switch then shows the new language at once instead of at the next write, and a text that
 * is written once (a job's "done in 2.1 s") is not left in the old language.
 * @param {Element} node
 * @param {() => string} words
 */
export function liveText(node, words) {
  liveTexts.set(node, words);
  node.setAttribute("data-i18n-live", "");
  node.textContent = words();
}

/**
 * Remember the reader's choice and switch to it.
 * @param {string} lang
 */
export async function chooseLanguage(lang) {
  try { localStorage.setItem(STORAGE_KEY, lang); } catch { /* not remembered, still switched */ }
  return setLanguage(lang);
}

/** @returns {string} the language shown now ("en", "zh-CN") */
export function language() { return code; }

/**
 * A count or a size written the reader's way (digit grouping by the language): 1,234,567.
 * @param {number} v
 * @returns {string}
 */
export function number(v) {
  // one formatter per language: toLocaleString builds a new one on every call (~0.1 ms),
  // and the overview asks this for every pager of every column
  let f = formatters.get(code);
  if (!f) { f = new Intl.NumberFormat(code); formatters.set(code, f); }
  return f.format(Number(v));
}

/** @type {Map<string, Intl.NumberFormat>} */
const formatters = new Map();

/**
 * Call f after every language switch (to redraw what a module drew).
 * @param {(lang: string) => void} f
 * @returns {() => void} unsubscribe
 */
export function onLanguage(f) { listeners.add(f); return () => listeners.delete(f); }

/**
 * @param {Catalogue} cat
 * @param {string} key
 */
function lookup(cat, key) {
  /** @type {any} */
  let v = cat;
  for (const part of key.split(".")) {
    if (v === null || typeof v !== "object" || !(part in v)) return undefined;
    v = v[part];
  }
  return v;
}

/**
 * The text for key in the current language, {placeholders} filled from params (as text).
 * @param {string} key e.g. "overview.fold"
 * @param {Record<string, unknown>} [params]
 * @returns {string}
 */
export function t(key, params = {}) {
  let v = lookup(current, key);
  if (v === undefined || (typeof v === "object" && !("other" in v))) v = lookup(english, key);
  if (v === undefined) return key;
  if (typeof v === "object") {
    const n = Number(params.n);
    const form = new Intl.PluralRules(code).select(Number.isFinite(n) ? n : 0);
    v = v[form] ?? v.other;
  }
  return String(v).replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

/** @returns {boolean} whether key exists in English (for optional texts) */
export function has(key) { return typeof lookup(english, key) === "string" || typeof lookup(english, key) === "object"; }

/** The attributes translatePage fills: data-i18n-<attribute> names the key. */
const ATTRIBUTES = ["title", "placeholder", "aria-label", "alt"];

/**
 * Translate the static page: data-i18n names the key of an element's text, and
 * data-i18n-title, -placeholder, -aria-label, -alt the keys of those attributes.
 * @param {ParentNode} root
 */
export function translatePage(root) {
  root.querySelectorAll("[data-i18n]").forEach((e) => { e.textContent = t(/** @type {HTMLElement} */ (e).getAttribute("data-i18n") || ""); });
  for (const attr of ATTRIBUTES) {
    root.querySelectorAll(`[data-i18n-${attr}]`).forEach((e) => {
      const key = e.getAttribute(`data-i18n-${attr}`);
      if (key) e.setAttribute(attr, t(key));
    });
  }
}

/**
 * A sentence the server composed (convscope.i18n.message): {key, params, text}. Shown in
 * the current language when the catalogue has the key, else as the server's English text.
 * A param that is itself such a message (a clause the server chose: "drops" or "raises")
 * is said in the same language first, as convscope.i18n.text does.
 * @param {{key?: string, params?: Record<string, unknown>, text?: string} | string | null | undefined} m
 * @returns {string}
 */
export function say(m) {
  if (m === null || m === undefined) return "";
  if (typeof m === "string") return m;
  if (m.key && has(m.key)) {
    /** @type {Record<string, unknown>} */
    const params = {};
    for (const [name, v] of Object.entries(m.params || {})) params[name] = isMessage(v) ? say(/** @type {any} */ (v)) : v;
    return t(m.key, params);
  }
  return m.text || m.key || "";
}

/**
 * @param {unknown} v
 * @returns {boolean} whether v is a server message ({key, params, text})
 */
function isMessage(v) {
  return v !== null && typeof v === "object" && typeof (/** @type {any} */ (v).key) === "string";
}
