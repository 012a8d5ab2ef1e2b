// @ts-check
// Hyper-parameter playground: the server convolves a crop of a real activation map and
// explains combinations that do not fit. The page only collects the settings; its words come
// from the catalogue's "playground" section (a field's label: playground.<field>). A language
// switch redraws the open playground from the last answer (no request again).

import { getJSON, q } from "./api.js";
import { grid, mapView } from "./widgets.js";
import { el, html } from "./dom.js";
import { fmt } from "./colors.js";
import { t, say, onLanguage } from "./i18n.js";

/** @type {[string, number, number, number][]} field, lowest, highest, first value */
const FIELDS = [
  ["crop", 1, 32, 7],
  ["kernel", 1, 9, 3],
  ["padding", 0, 6, 0],
  ["stride", 1, 8, 1],
  ["dilation", 1, 4, 1],
];

/** @type {Playground | null} the playground last opened (main.js makes one per opening) */
let shown = null;
onLanguage(() => { if (shown && !shown.root.hidden) shown.redraw(); });

export class Playground {
  constructor(root, ctx) {
    this.root = root;
    this.ctx = ctx; // {model, image, trace, layer, channel}
    /** @type {Record<string, any>} the settings sent to the server */
    this.values = Object.fromEntries(FIELDS.map(([k, , , v]) => [k, v]));
    this.values.kernel_type = "mean";
    this.seq = 0;
    /** @type {{ok?: any, error?: string} | null} the last answer (or why there is none), for a redraw */
    this.last = null;
    shown = this;
  }

  render() {
    this.form();
    return this.update();
  }

  /** The open playground again in the language now chosen, from the last answer. */
  redraw() {
    this.form();
    if (this.last?.ok) this.show(this.last.ok);
    else if (this.last) this.out.replaceChildren(problems([this.last.error || ""]));
  }

  /** The head and the settings form, filled with the current settings. */
  form() {
    const { trace } = this.ctx;
    this.root.replaceChildren();
    this.root.hidden = false;
    const head = el("header", "detail-head", [el("h2", "", t("playground.title")), el("span", "sub", t("playground.sub"))]);
    const close = el("button", "close", "×");
    close.title = t("playground.close");
    close.onclick = () => { this.root.hidden = true; };
    head.appendChild(close);
    this.root.appendChild(head);
    const form = el("form", "pg-form");
    form.onsubmit = (e) => e.preventDefault();
    const spatial = trace.layers.filter((l) => l.shape.length === 3);
    const layerSel = el("select");
    layerSel.name = "layer";
    spatial.forEach((l) => layerSel.appendChild(new Option(`${l.name} (${l.shape.join("×")})`, l.name)));
    if (!spatial.some((l) => l.name === this.ctx.layer)) this.ctx.layer = spatial[0].name;
    layerSel.value = this.ctx.layer;
    const chan = el("input");
    Object.assign(chan, { type: "number", min: 0, value: this.ctx.channel || 0, name: "channel" });
    form.append(labelled(t("playground.map"), layerSel), labelled(t("playground.channel"), chan));
    for (const [key, lo, hi] of FIELDS) {
      const inp = el("input");
      Object.assign(inp, { type: "number", min: lo, max: hi, value: this.values[key], name: key });
      inp.oninput = () => { this.values[key] = Number(inp.value); this.update(); };
      form.appendChild(labelled(t(`playground.${key}`), inp));
    }
    const kt = el("select");
    kt.name = "kernel_type";
    kt.append(new Option(t("playground.kernel_mean"), "mean"), new Option(t("playground.kernel_edge"), "edge"));
    kt.value = this.values.kernel_type;
    kt.onchange = () => { this.values.kernel_type = kt.value; this.update(); };
    form.appendChild(labelled(t("playground.kernel_type"), kt));
    layerSel.onchange = () => { this.ctx.layer = layerSel.value; this.update(); };
    chan.oninput = () => { this.ctx.channel = Number(chan.value); this.update(); };
    this.root.appendChild(form);
    this.out = el("div", "pg-out");
    this.root.appendChild(this.out);
  }

  async update() {
    const my = ++this.seq;
    const { model, image, layer, channel } = this.ctx;
    let r;
    try {
      r = await getJSON(`/api/models/${encodeURIComponent(model)}/playground?` + q({ image, layer, channel: channel || 0, ...this.values }));
    } catch (e) {
      if (my !== this.seq) return;
      this.last = { error: e.message };
      this.out.replaceChildren(problems([e.message]));
      return;
    }
    if (my !== this.seq) return;
    this.last = { ok: r };
    this.show(r);
  }

  /** One answer: the formula with its numbers, and the crop, input, kernel and output grids. */
  show(r) {
    const { layer, channel } = this.ctx;
    this.out.replaceChildren(el("div", "formula", [
      html`${r.formula}<br>= ${r.substituted} = <b data-k="output-size">${r.valid ? `${r.output_size} × ${r.output_size}` : t("playground.invalid")}</b>`,
      r.exact !== null && !Number.isInteger(r.exact) && html` <span class="note">${t("playground.before_floor", { v: fmt(r.exact, 4) })}</span>`]));
    if (!r.valid) {
      this.out.appendChild(problems(r.problems_i18n || r.problems));
      this.root.dataset.valid = "0";
      return;
    }
    this.root.dataset.valid = "1";
    const row = el("div", "formula-grids pg-grids");
    const whole = mapView(r.map, { px: 130, label: t("playground.crop_label", { layer, c: channel || 0 }) });
    whole.mark([[r.crop_origin[0], r.crop_origin[1], r.settings.crop, r.settings.crop, "window"]]);
    row.append(whole, el("span", "op", "→"));
    const small = r.padded.length <= 14;
    const p = r.settings.padding;
    const padded = r.padded.map((rowv, i) => rowv.map((v, j) => (i < p || j < p || i >= r.padded.length - p || j >= r.padded.length - p ? null : v)));
    const inGrid = grid(padded, { title: t("playground.input_grid", { n: r.settings.crop, layer, c: channel || 0, p }), cls: small ? "" : "compact" });
    const outGrid = grid(r.output, { title: t("playground.output_grid", { n: r.output_size }), cls: r.output.length <= 14 ? "" : "compact" });
    const type = t(`playground.type_${r.settings.kernel_type}`);
    row.append(inGrid, el("span", "op", "⊛"), grid(r.kernel, { title: t("playground.kernel_grid", { k: r.settings.kernel, type }), digits: 2 }),
      el("span", "op", "="), outGrid);
    this.out.appendChild(row);
    // hover an output cell: outline the window it saw in the padded input
    const s = r.settings.stride, d = r.settings.dilation, k = r.settings.kernel;
    outGrid.querySelectorAll("tr").forEach((tr, oy) => tr.querySelectorAll("td").forEach((td, ox) => {
      td.onmouseenter = () => {
        inGrid.querySelectorAll("td.win").forEach((c) => c.classList.remove("win"));
        const rows = inGrid.querySelectorAll("tr");
        for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) {
          const cell = rows[oy * s + i * d]?.children[ox * s + j * d];
          if (cell) cell.classList.add("win");
        }
      };
    }));
  }
}

/**
 * The server's reasons why the settings do not fit, one paragraph each (its messages, or plain text).
 * @param {Array<string | {key: string, params: Record<string, unknown>, text: string}>} lines
 */
function problems(lines) {
  const box = el("div", "problems", lines.map((p) => el("p", "", say(p))));
  box.dataset.k = "problems";
  return box;
}

function labelled(text, input) {
  const l = el("label", "pg-field");
  l.appendChild(el("span", "", text));
  l.appendChild(input);
  return l;
}
