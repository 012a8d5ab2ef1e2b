// The page's escaping template (src/convscope/server/static/js/dom.js), without a browser:
// every interpolated value is escaped unless it is html`` markup itself.
// Run with: node --test tests/js/

import { test } from "node:test";
import assert from "node:assert/strict";
import { html, escapeHTML, isMarkup } from "../../src/convscope/server/static/js/dom.js";

const PAYLOADS = [
  "<img src=x onerror=window.__xss=1>",
  "</script><script>window.__xss=2</script>",
  `"><svg onload=alert(1)>`,
  "' onmouseover='alert(1)",
  "`${1}`",
];

test("text and attribute values are escaped", () => {
  for (const p of PAYLOADS) {
    const m = html`<span class="n" title="${p}">${p}</span>`;
    const [, title, body] = m.text.match(/^<span class="n" title="(.*)">(.*)<\/span>$/);
    for (const part of [title, body]) assert.ok(!/[<>"'`]/.test(part), m.text);  // nothing can open a tag or end the quote
    assert.equal(title, escapeHTML(p));
    assert.equal(body, escapeHTML(p));
  }
  assert.equal(escapeHTML(`<a href="x">'&'</a>`), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
});

test("markup from html`` nests unescaped, and only that", () => {
  const inner = html`<b>${"<i>"}</b>`;
  assert.equal(html`<p>${inner}</p>`.text, "<p><b>&lt;i&gt;</b></p>");
  // look-alikes are not markup: a server object with a text field, a String, a toString trick
  for (const fake of [{ text: "<img src=x>" }, new String("<img src=x>"), { toString: () => "<img src=x>" }]) {
    assert.ok(!isMarkup(fake));
    assert.ok(!html`${fake}`.text.includes("<img"), html`${fake}`.text);
  }
  assert.ok(!isMarkup("<b>x</b>"));
  assert.throws(() => { html`x`.text = "<img>"; });
});

test("lists join escaped; null, undefined and false are nothing; numbers are text", () => {
  const names = ["<a>", "b&c"];
  assert.equal(html`${names.map((n) => html`<li>${n}</li>`)}`.text, "<li>&lt;a&gt;</li><li>b&amp;c</li>");
  assert.equal(html`${names}`.text, "&lt;a&gt;b&amp;c");
  assert.equal(html`[${null}${undefined}${false}]`.text, "[]");
  assert.equal(html`${0} ${1.5} ${true}`.text, "0 1.5 true");
});
