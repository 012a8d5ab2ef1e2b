// @ts-check
// Hyper-parameter playground: the server convolves a crop of a real activation map and
// explains combinations that do not fit. The page only collects the settings.

import { getJSON, q } from "./api.js";
import { grid, mapView } from "./widgets.js";
import { el, html } from "./dom.js";
import { fmt } from "./colors.js";

const FIELDS = [
  ["crop", "input size n", 1, 32, 7],
  ["kernel", "kernel size k", 1, 9, 3],
  ["padding", "padding p", 0, 6, 0],
  ["stride", "stride s", 1, 8, 1],
  ["dilation", "dilation d", 1, 4, 1],
];

export class Playground {
  constructor(root, ctx) {
    this.root = root;
    this.ctx = ctx; // {model, image, trace, layer, channel}
    /** @type {Record<string, any>} the settings sent to the server */
    this.values = Object.fromEntries(FIELDS.map(([k, , , , v]) => [k, v]));
    this.values.kernel_type = "mean";
    this.seq = 0;
  }

  render() {
    const { trace } = this.ctx;
    this.root.replaceChildren();
    this.root.hidden = false;
    const head = el("header", "detail-head", [el("h2", "", "Hyper-parameter playground"),
      el("span", "sub", "one convolution over a centre crop of a real activation map from this image")]);
    const close = el("button", "close", "×");
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
    form.append(labelled("map", layerSel), labelled("channel", chan));
    for (const [key, label, lo, hi] of FIELDS) {
      const inp = el("input");
      Object.assign(inp, { type: "number", min: lo, max: hi, value: this.values[key], name: key });
      inp.oninput = () => { this.values[key] = Number(inp.value); this.update(); };
      form.appendChild(labelled(label, inp));
    }
    const kt = el("select");
    kt.name = "kernel_type";
    kt.append(new Option("mean (blur)", "mean"), new Option("edge", "edge"));
    kt.value = this.values.kernel_type;
    kt.onchange = () => { this.values.kernel_type = kt.value; this.update(); };
    form.appendChild(labelled("kernel", kt));
    layerSel.onchange = () => { this.ctx.layer = layerSel.value; this.update(); };
    chan.oninput = () => { this.ctx.channel = Number(chan.value); this.update(); };
    this.root.appendChild(form);
    this.out = el("div", "pg-out");
    this.root.appendChild(this.out);
    return this.update();
  }

  async update() {
    const my = ++this.seq;
    const { model, image, layer, channel } = this.ctx;
    let r;
    try {
      r = await getJSON(`/api/models/${encodeURIComponent(model)}/playground?` + q({ image, layer, channel: channel || 0, ...this.values }));
    } catch (e) {
      if (my !== this.seq) return;
      this.out.replaceChildren(problems([e.message]));
      return;
    }
    if (my !== this.seq) return;
    this.out.replaceChildren(el("div", "formula", [
      html`${r.formula}<br>= ${r.substituted} = <b data-k="output-size">${r.valid ? `${r.output_size} × ${r.output_size}` : "invalid"}</b>`,
      r.exact !== null && !Number.isInteger(r.exact) && html` <span class="note">(before flooring: ${fmt(r.exact, 4)})</span>`]));
    if (!r.valid) {
      this.out.appendChild(problems(r.problems));
      this.root.dataset.valid = "0";
      return;
    }
    this.root.dataset.valid = "1";
    const row = el("div", "formula-grids pg-grids");
    const whole = mapView(r.map, { px: 130, label: `${layer} · ch ${channel || 0}: the crop` });
    whole.mark([[r.crop_origin[0], r.crop_origin[1], r.settings.crop, r.settings.crop, "window"]]);
    row.append(whole, el("span", "op", "→"));
    const small = r.padded.length <= 14;
    const p = r.settings.padding;
    const padded = r.padded.map((rowv, i) => rowv.map((v, j) => (i < p || j < p || i >= r.padded.length - p || j >= r.padded.length - p ? null : v)));
    const inGrid = grid(padded, { title: `input ${r.settings.crop}×${r.settings.crop} from ${layer} ch ${channel || 0}, padded by ${p}`, cls: small ? "" : "compact" });
    const outGrid = grid(r.output, { title: `output ${r.output_size}×${r.output_size}`, cls: r.output.length <= 14 ? "" : "compact" });
    row.append(inGrid, el("span", "op", "⊛"), grid(r.kernel, { title: `kernel ${r.settings.kernel}×${r.settings.kernel} (${r.settings.kernel_type})`, digits: 2 }),
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

/** The server's reasons why the settings do not fit, one paragraph each. */
function problems(lines) {
  const box = el("div", "problems", lines.map((p) => el("p", "", p)));
  box.dataset.k = "problems";
  return box;
}

function labelled(text, input) {
  const l = el("label", "pg-field");
  l.appendChild(el("span", "", text));
  l.appendChild(input);
  return l;
}
