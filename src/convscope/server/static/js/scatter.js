// @ts-check
// A canvas scatter plot for embeddings of up to tens of thousands of points.
// Points are drawn in one path per (class, marker) and found under the mouse through a
// uniform grid of screen cells, so hovering stays instant with 10,000 points.

const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                        "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const CELL = 12; // hit-test grid cell, CSS pixels
const PAD = 14;

export function classColor(k) {
  if (k < PALETTE.length) return PALETTE[k];
  return `hsl(${(k * 137.508) % 360},60%,45%)`;
}

export class Scatter {
  /**
   * canvas: the element; pts: {x:[], y:[], label:[], correct:[]};
   * opts: {onHover(i, ev) (i = -1 when none), onClick(i, ev), radius}
   */
  constructor(canvas, pts, opts = {}) {
    this.canvas = canvas;
    this.pts = pts;
    this.opts = opts;
    this.n = pts.x.length;
    this.r = opts.radius || (this.n > 3000 ? 2 : 3);
    this.hover = -1;
    canvas.addEventListener("mousemove", (ev) => this.move(ev));
    canvas.addEventListener("mouseleave", (ev) => { this.setHover(-1, ev); });
    canvas.addEventListener("click", (ev) => {
      const i = this.at(ev);
      if (i >= 0 && this.opts.onClick) this.opts.onClick(i, ev);
    });
  }

  /** Fit the data into the canvas' CSS size and draw every point; rebuild the hit grid. */
  draw() {
    const cv = this.canvas, dpr = window.devicePixelRatio || 1;
    const w = cv.clientWidth, h = cv.clientHeight;
    cv.width = Math.round(w * dpr);
    cv.height = Math.round(h * dpr);
    const { x, y, label, correct } = this.pts;
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (let i = 0; i < this.n; i++) {
      if (x[i] < x0) x0 = x[i]; if (x[i] > x1) x1 = x[i];
      if (y[i] < y0) y0 = y[i]; if (y[i] > y1) y1 = y[i];
    }
    const k = Math.min((w - 2 * PAD) / (x1 - x0 || 1), (h - 2 * PAD) / (y1 - y0 || 1));
    const ox = (w - k * (x1 - x0)) / 2, oy = (h - k * (y1 - y0)) / 2;
    this.sx = new Float32Array(this.n);
    this.sy = new Float32Array(this.n);
    for (let i = 0; i < this.n; i++) {
      this.sx[i] = ox + (x[i] - x0) * k;
      this.sy[i] = h - (oy + (y[i] - y0) * k); // y up
    }
    // hit grid: cell -> indices
    this.cols = Math.ceil(w / CELL) + 1;
    this.rows = Math.ceil(h / CELL) + 1;
    this.grid = new Map();
    for (let i = 0; i < this.n; i++) {
      const c = Math.floor(this.sy[i] / CELL) * this.cols + Math.floor(this.sx[i] / CELL);
      let list = this.grid.get(c);
      if (!list) this.grid.set(c, (list = []));
      list.push(i);
    }
    const ctx = cv.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const classes = new Set(label);
    const r = this.r;
    for (const cls of classes) {
      ctx.fillStyle = classColor(cls);
      ctx.globalAlpha = 0.75;
      ctx.beginPath();
      for (let i = 0; i < this.n; i++) {
        if (label[i] !== cls || !correct[i]) continue;
        ctx.moveTo(this.sx[i] + r, this.sy[i]);
        ctx.arc(this.sx[i], this.sy[i], r, 0, 2 * Math.PI);
      }
      ctx.fill();
    }
    // mistakes on top: crosses in the true class' colour
    ctx.globalAlpha = 1;
    ctx.lineWidth = 1.6;
    const c = r + 1.5;
    for (const cls of classes) {
      ctx.strokeStyle = classColor(cls);
      ctx.beginPath();
      for (let i = 0; i < this.n; i++) {
        if (label[i] !== cls || correct[i]) continue;
        ctx.moveTo(this.sx[i] - c, this.sy[i] - c); ctx.lineTo(this.sx[i] + c, this.sy[i] + c);
        ctx.moveTo(this.sx[i] - c, this.sy[i] + c); ctx.lineTo(this.sx[i] + c, this.sy[i] - c);
      }
      ctx.stroke();
    }
    this.base = ctx.getImageData(0, 0, cv.width, cv.height);
    this.hover = -1;
  }

  /** The nearest point within a few pixels of (px, py) in CSS pixels, or -1. */
  hit(px, py) {
    const cx = Math.floor(px / CELL), cy = Math.floor(py / CELL);
    const reach = (this.r + 4) ** 2;
    let best = -1, bestD = reach;
    for (let dy = -1; dy <= 1; dy++) {
      for (let dx = -1; dx <= 1; dx++) {
        const list = this.grid.get((cy + dy) * this.cols + (cx + dx));
        if (!list) continue;
        for (const i of list) {
          const d = (this.sx[i] - px) ** 2 + (this.sy[i] - py) ** 2;
          if (d <= bestD) { bestD = d; best = i; }
        }
      }
    }
    return best;
  }

  /** Where point i is drawn, in CSS pixels relative to the canvas. */
  position(i) {
    return [this.sx[i], this.sy[i]];
  }

  at(ev) {
    const rect = this.canvas.getBoundingClientRect();
    return this.hit(ev.clientX - rect.left, ev.clientY - rect.top);
  }

  move(ev) {
    this.setHover(this.at(ev), ev);
  }

  setHover(i, ev) {
    if (i === this.hover) return;
    this.hover = i;
    const ctx = this.canvas.getContext("2d");
    ctx.putImageData(this.base, 0, 0);
    if (i >= 0) {
      ctx.beginPath();
      ctx.strokeStyle = "#000";
      ctx.lineWidth = 2;
      ctx.arc(this.sx[i], this.sy[i], this.r + 4, 0, 2 * Math.PI);
      ctx.stroke();
    }
    this.canvas.style.cursor = i >= 0 ? "pointer" : "default";
    if (this.opts.onHover) this.opts.onHover(i, ev);
  }
}
