// @ts-check
// The model summary panel (Keras-style), read from the server's trace summary.

import { el, add, html } from "./dom.js";
import { t, number } from "./i18n.js";
import { kindWord } from "./overview.js";

export function renderSummary(root, s) {
  root.replaceChildren();
  root.hidden = false;
  const head = el("header", "detail-head", html`<h2>${t("summary.title")}</h2><span class="sub">${s.model} · ${t("summary.input", { shape: s.input_shape.join("×") })}</span>`);
  const close = el("button", "close", "×");
  close.title = t("detail.close");
  close.onclick = () => { root.hidden = true; };
  head.appendChild(close);
  root.appendChild(head);
  const table = el("table", "summary-table");
  add(table, html`<thead><tr><th>${t("summary.layer")}</th><th>${t("summary.kind")}</th><th>${t("summary.shape")}</th><th>${t("summary.parameters")}</th><th>${t("summary.macs")}</th></tr></thead>`);
  const tb = el("tbody");
  for (const r of s.rows) {
    tb.appendChild(el("tr", "", [html`<td>${r.name}</td><td>${kindWord(r.kind)}</td><td>${r.shape.join(" × ")}</td>`,
      html`<td class="n">${number(r.params)}</td><td class="n">${number(r.macs)}</td>`]));
  }
  table.appendChild(tb);
  add(table, html`<tfoot><tr><td colspan="3">${t("summary.total", { n: number(s.rows.length) })}</td>`,
    html`<td class="n" data-k="total-params">${number(s.total_params)}</td><td class="n">${number(s.total_macs)}</td></tr></tfoot>`);
  root.appendChild(table);
}
