// Lint for the browser page (src/convscope/server/static/js: plain ES modules served as-is)
// and its node tests (tests/js). Besides @eslint/js's recommended rules, a few rules keep
// the page's one design decision about markup: strings from files and users are text, so
// nothing parses a string as HTML except dom.js's html`` template (one innerHTML, marked
// there with an eslint-disable comment that says why), and nothing evaluates strings as code.

import js from "@eslint/js";
import globals from "globals";

const HTML_SINKS = "parses a string as markup: build elements with dom.js (el, fill, add) or the escaping html`` template";

export default [
  { ignores: ["node_modules/**"] },
  js.configs.recommended,
  {
    files: ["src/convscope/server/static/js/**/*.js"],
    languageOptions: { ecmaVersion: 2022, sourceType: "module", globals: { ...globals.browser } },
  },
  {
    files: ["tests/js/**/*.mjs", "tests/js/**/*.js", "eslint.config.js"],
    languageOptions: { ecmaVersion: 2022, sourceType: "module", globals: { ...globals.node } },
  },
  {
    rules: {
      "no-unused-vars": ["error", { args: "after-used", caughtErrors: "none" }],
      "no-eval": "error",
      "no-implied-eval": "error",
      "no-new-func": "error",
      "no-restricted-properties": ["error",
        { property: "innerHTML", message: HTML_SINKS },
        { property: "outerHTML", message: HTML_SINKS },
        { property: "insertAdjacentHTML", message: HTML_SINKS },
        { property: "createContextualFragment", message: HTML_SINKS },
        { property: "setHTMLUnsafe", message: HTML_SINKS },
        { object: "document", property: "write", message: HTML_SINKS },
        { object: "document", property: "writeln", message: HTML_SINKS },
      ],
      "no-restricted-syntax": ["error",
        { selector: "NewExpression[callee.name='Function'], CallExpression[callee.name='Function']", message: "Function(...) evaluates a string as code" },
        { selector: "NewExpression[callee.name='DOMParser']", message: HTML_SINKS },
      ],
    },
  },
];
