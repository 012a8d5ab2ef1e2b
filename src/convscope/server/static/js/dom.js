// @ts-check
// Building the page's elements without ever parsing a string from outside as markup.
//
// Class names, layer names, run folders and error messages come from files and users, so
// they are text, always: el() and fill() put strings in as text nodes. Markup the page
// writes itself goes through the html`` template, which escapes every interpolated value
// unless that value is itself html`` markup. No other module touches innerHTML.
//
// Always quote attribute values in a template (class="${x}"): escaping protects a quoted
// value, not an unquoted one.

/** @type {Record<string, string>} */
const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;", "`": "&#96;" };

/**
 * A string made safe for HTML text and for a quoted attribute value.
 * @param {unknown} value
 * @returns {string}
 */
export function escapeHTML(value) {
  return String(value).replace(/[&<>"'`]/g, (c) => ESCAPES[c]);
}

/** Markup made by html``. The class is not exported, so nothing else (JSON included) can be one. */
class Markup {
  #text;
  /** @param {string} text */
  constructor(text) { this.#text = text; Object.freeze(this); }
  get text() { return this.#text; }
  toString() { throw new TypeError("html`` markup does not join with +: put the parts in a list or in one html`` template"); }
}

/**
 * One interpolated value: markup as is, a list piece by piece, null/undefined/false as nothing, the rest escaped.
 * @param {unknown} v
 * @returns {string}
 */
function piece(v) {
  if (v instanceof Markup) return v.text;
  if (Array.isArray(v)) return v.map(piece).join("");
  if (v === null || v === undefined || v === false) return "";
  return escapeHTML(v);
}

/**
 * Tagged template: html`<b>${name}</b>` escapes name; nest html`` values to compose markup.
 * @param {TemplateStringsArray} strings
 * @param {...unknown} values
 * @returns {Markup}
 */
export function html(strings, ...values) {
  let out = strings[0];
  values.forEach((v, i) => { out += piece(v) + strings[i + 1]; });
  return new Markup(out);
}

/**
 * Whether v was made by html`` (the only markup fill() and add() parse).
 * @param {unknown} v
 * @returns {v is Markup}
 */
export function isMarkup(v) {
  return v instanceof Markup;
}

/**
 * What fill(), add() and el() take: text (any value but a Node is shown as its string),
 * html`` markup, a Node, or a list of these; null, undefined and false are nothing.
 * @typedef {unknown} Content
 */

/**
 * Nodes for one part: a Node as is, html`` markup parsed (inert, in a <template>), a list, anything else as text.
 * @param {Content} part
 * @returns {Node[]}
 */
function toNodes(part) {
  if (part instanceof Node) return [part];
  if (part instanceof Markup) {
    const t = document.createElement("template");
    // eslint-disable-next-line no-restricted-properties -- the page's one innerHTML: html`` escaped every value in this markup
    t.innerHTML = part.text;
    return [t.content];
  }
  if (Array.isArray(part)) {  // a list of markup and text is parsed as one piece, so an element may span items
    const flat = part.flat(Infinity);
    return flat.some((p) => p instanceof Node) ? flat.flatMap(toNodes) : toNodes(html`${flat}`);
  }
  if (part === null || part === undefined || part === false) return [];
  return [document.createTextNode(String(part))];
}

/**
 * Replace node's children with parts (text, html`` markup, nodes); returns node.
 * @template {Element} N
 * @param {N} node
 * @param {...Content} parts
 * @returns {N}
 */
export function fill(node, ...parts) {
  node.replaceChildren(...toNodes(parts));
  return node;
}

/**
 * Append parts (text, html`` markup, nodes) to node; returns node.
 * @template {Element} N
 * @param {N} node
 * @param {...Content} parts
 * @returns {N}
 */
export function add(node, ...parts) {
  node.append(...toNodes(parts));
  return node;
}

/**
 * A new element: el("td", "name", text) shows text as text; pass html`...` for markup.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {string} [cls]
 * @param {Content} [content]
 * @returns {HTMLElementTagNameMap[K]}
 */
export function el(tag, cls, content) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (content !== undefined) fill(e, content);
  return e;
}

/**
 * The page's element with this id (index.html has every id the modules ask for). A caller
 * that needs more than an HTMLElement (a select's value) casts it with a JSDoc type.
 * @param {string} id
 * @returns {HTMLElement}
 */
export function byId(id) {
  return /** @type {HTMLElement} */ (document.getElementById(id));
}
