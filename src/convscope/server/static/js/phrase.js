// @ts-check
// A catalogue sentence with markup inside it: "which parts ... · predicted {class}" where
// {class} is shown bold. The sentence's word order is the language's (Chinese puts the
// class elsewhere than English), so the markup cannot be glued around t()'s output: the
// placeholders that hold html`` markup are cut out of the translated text and the pieces
// are joined through html``, which escapes every text piece (the catalogue's and the data's).

import { t } from "./i18n.js";
import { html, isMarkup } from "./dom.js";

// Private-use characters: they never occur in a catalogue or in data we show, so a
// placeholder marked with them cannot be confused with text.
const OPEN = "\uE000", CLOSE = "\uE001";
const MARK = new RegExp(`${OPEN}(\\w+)${CLOSE}`, "g");

/**
 * t(key, params) as html`` markup: params made by html`` stay markup, the rest is text.
 * @param {string} key
 * @param {Record<string, unknown>} [params]
 */
export function phrase(key, params = {}) {
  /** @type {Record<string, unknown>} */
  const plain = {};
  for (const [k, v] of Object.entries(params)) plain[k] = isMarkup(v) ? `${OPEN}${k}${CLOSE}` : v;
  const pieces = t(key, plain).split(MARK);  // [text, name, text, name, ..., text]
  return html`${pieces.map((p, i) => (i % 2 ? params[p] : p))}`;
}
