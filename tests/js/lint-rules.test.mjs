// eslint.config.js keeps the page's rule about markup: no module but dom.js parses a string
// as HTML or evaluates one as code. Each sink below, put in a page module, must be an error
// (so weakening the config fails here), and the shipped modules must lint clean.
// Run with: node --test tests/js/  (after npm ci)

import { test } from "node:test";
import assert from "node:assert/strict";
import { ESLint } from "eslint";

const SINKS = [
  "document.body.innerHTML = s;",
  "document.body['innerHTML'] = s;",
  "const { innerHTML } = document.body; void innerHTML;",
  "document.body.outerHTML = s;",
  "document.body.insertAdjacentHTML('beforeend', s);",
  "document.createRange().createContextualFragment(s);",
  "document.write(s);",
  "new DOMParser().parseFromString(s, 'text/html');",
  "eval(s);",
  "new Function(s);",
  "Function(s)();",
  "setTimeout(s + '', 1);",
];

test("every way of parsing or running a string is an error in a page module", async () => {
  const eslint = new ESLint();
  for (const sink of SINKS) {
    const [result] = await eslint.lintText(`export function f(s) {\n  ${sink}\n}\n`,
      { filePath: "src/convscope/server/static/js/new-module.js" });
    const errors = result.messages.filter((m) => m.severity === 2 && m.line === 2);
    assert.ok(errors.length >= 1, `not flagged: ${sink}`);
  }
});

test("the page's modules lint clean: dom.js's one innerHTML is the marked exception", async () => {
  const results = await new ESLint().lintFiles(["src/convscope/server/static/js"]);
  assert.ok(results.length >= 19);
  assert.deepEqual(results.flatMap((r) => r.messages.map((m) => `${r.filePath}:${m.line} ${m.message}`)), []);
});
