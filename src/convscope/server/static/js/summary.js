// @ts-check
// The model summary panel (Keras-style), read from the server's trace summary.

import { el, add, html } from "./dom.js";

export function renderSummary(root, s) {
  root.replaceChildren();
  root.hidden = false;
  const head = el("header", "detail-head", html`<h2>Model summary</h2><span class="sub">${s.model} · input ${s.input_shape.join("×")}</span>`);
  const close = el("button", "close", "×");
  close.onclick = () => { root.hidden = true; };
  head.appendChild(close);
  root.appendChild(head);
  const t = el("table", "summary-table");
  add(t, html`<thead><tr><th>layer</th><th>kind</th><th>output shape</th><th>parameters</th><th>multiply-adds</th></tr></thead>`);
  const tb = el("tbody");
  for (const r of s.rows) {
    tb.appendChild(el("tr", "", [html`<td>${r.name}</td><td>${r.kind}</td><td>${r.shape.join(" × ")}</td>`,
      html`<td class="n">${r.params.toLocaleString()}</td><td class="n">${r.macs.toLocaleString()}</td>`]));
  }
  t.appendChild(tb);
  add(t, html`<tfoot><tr><td colspan="3">total (${s.rows.length} layers)</td>`,
    html`<td class="n" data-k="total-params">${s.total_params.toLocaleString()}</td><td class="n">${s.total_macs.toLocaleString()}</td></tr></tfoot>`);
  root.appendChild(t);
}
