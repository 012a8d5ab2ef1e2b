// The model summary panel (Keras-style), read from the server's trace summary.

import { el } from "./widgets.js";

export function renderSummary(root, s) {
  root.innerHTML = "";
  root.hidden = false;
  const head = el("header", "detail-head", `<h2>Model summary</h2><span class="sub">${s.model} · input ${s.input_shape.join("×")}</span>`);
  const close = el("button", "close", "×");
  close.onclick = () => { root.hidden = true; };
  head.appendChild(close);
  root.appendChild(head);
  const t = el("table", "summary-table");
  t.innerHTML = `<thead><tr><th>layer</th><th>kind</th><th>output shape</th><th>parameters</th><th>multiply-adds</th></tr></thead>`;
  const tb = el("tbody");
  for (const r of s.rows) {
    const tr = el("tr");
    tr.innerHTML = `<td>${r.name}</td><td>${r.kind}</td><td>${r.shape.join(" × ")}</td>` +
      `<td class="n">${r.params.toLocaleString()}</td><td class="n">${r.macs.toLocaleString()}</td>`;
    tb.appendChild(tr);
  }
  t.appendChild(tb);
  t.insertAdjacentHTML("beforeend", `<tfoot><tr><td colspan="3">total (${s.rows.length} layers)</td>` +
    `<td class="n" data-k="total-params">${s.total_params.toLocaleString()}</td><td class="n">${s.total_macs.toLocaleString()}</td></tr></tfoot>`);
  root.appendChild(t);
}
