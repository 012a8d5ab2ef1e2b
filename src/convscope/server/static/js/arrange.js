// @ts-check
// How the overview arranges a trace, worked out from the trace alone (pure, no DOM): the
// blocks it folds, which layers hold channels-last (B, H, W, C) tensors, and names cut to fit.

/**
 * @typedef {{name: string, kind: string, op?: string, shape: number[], inputs: string[],
 *   group?: string | null, layout?: string | null, relayout?: boolean}} Layer
 */

/** A layer's module path ('features.denseblock1.denselayer1.conv1' -> its parts); '' for fx's functional nodes. */
const path = (/** @type {Layer} */ l) => l.name.split("#")[0].split(".");

/** Layout-only operations (the server's ``relayout``, else a permute): they move values around,
 * so a block never presents one as its output. */
export const isLayoutOp = (/** @type {Layer} */ l) => l.relayout === true || /(^|\.)(permute|transpose|movedim)$/.test(l.op || "");

/**
 * The block each layer folds into. The server's blocks (``layer1.0``, ``features.1``) are kept,
 * except where one block holds most of the net (DenseNet's ``features``, with every layer in it):
 * that one is split by the module tree one level below (``features.denseblock1``,
 * ``features.transition1``, ...), and again below that by the same rule. fx's functional nodes
 * (a ``cat``, an ``add``) join the block of their latest input, which is where they ran, except
 * a concat of one tensor: it gathers what its consumer reads, so it joins the consumer.
 * @param {Layer[]} layers
 * @returns {Map<string, string | null>}
 */
export function foldGroups(layers) {
  const index = new Map(layers.map((l, i) => [l.name, i]));
  const consumer = new Map();
  for (const l of layers) for (const src of l.inputs) if (!consumer.has(src)) consumer.set(src, l.name);
  const functional = (/** @type {Layer} */ l) => path(l).length === 1 && l.group && l.group !== l.name;
  /** @type {Map<string, string | null>} */
  const groups = new Map();
  const place = (/** @type {Layer} */ l, /** @type {(l: Layer) => string | null} */ byModule) => {
    if (!functional(l)) return byModule(l);
    if (l.kind === "concat" && l.inputs.length === 1 && consumer.has(l.name)) return null; // settled below
    const latest = l.inputs.reduce((a, b) => ((index.get(b) ?? -1) > (index.get(a) ?? -1) ? b : a), l.inputs[0]);
    return latest === undefined ? null : groups.get(latest) ?? null;
  };
  const assign = (/** @type {(l: Layer) => string | null} */ byModule) => {
    groups.clear();
    for (const l of layers) groups.set(l.name, place(l, byModule));
    for (let i = layers.length - 1; i >= 0; i--) {  // single-input concats join their consumer
      const l = layers[i];
      if (functional(l) && l.kind === "concat" && l.inputs.length === 1 && consumer.has(l.name))
        groups.set(l.name, groups.get(consumer.get(l.name)) ?? null);
    }
  };
  assign((l) => l.group ?? null);
  for (;;) {
    const big = biggest(groups, layers.length);
    if (big === null) break;
    const depth = big.split(".").length;
    const before = new Map(groups);
    assign((l) => {
      const g = before.get(l.name);
      if (g !== big && !(g && g.startsWith(big + "."))) return g ?? null;
      if (!l.name.startsWith(big + ".")) return g ?? null;
      const p = path(l);
      return p.length > depth + 1 ? p.slice(0, depth + 1).join(".") : null;
    });
    if (biggest(groups, layers.length) === big) break;  // the split changed nothing
  }
  const count = new Map();
  for (const g of groups.values()) if (g) count.set(g, (count.get(g) || 0) + 1);
  for (const [name, g] of groups) if (g && count.get(g) < 2) groups.set(name, null);  // a block of one column is no block
  return groups;
}

/** The block holding more than half of the layers, if one does. */
function biggest(/** @type {Map<string, string | null>} */ groups, /** @type {number} */ total) {
  const count = new Map();
  for (const g of groups.values()) if (g) count.set(g, (count.get(g) || 0) + 1);
  for (const [g, n] of count) if (n > total / 2) return g;
  return null;
}

/**
 * The layers holding channels-last (B, H, W, C) tensors: the server's ``layout: "BHWC"`` where it
 * sends layouts (it then sends their ``shape`` as the (C, H, W) map, like their pages), else read
 * off the trace (older servers send the tensor's (H, W, C) and pages along H): a permute that moves a (C, H, W) map's channels last starts
 * one, layers that keep (H, W) carry it on (LayerNorm, Linear, GELU, a layer scale), and the
 * permute back ends it.
 * @param {Layer[]} layers
 * @returns {Set<string>}
 */
export function channelsLast(layers) {
  const byName = new Map(layers.map((l) => [l.name, l]));
  /** @type {Set<string>} */
  const out = new Set();
  for (const l of layers) {
    if (l.layout !== undefined) {
      if (l.layout === "BHWC") out.add(l.name);
      continue;
    }
    const src = byName.get(l.inputs[0]);
    if (!src || l.shape.length !== 3 || src.shape.length !== 3) continue;
    const [a, b, c] = src.shape, s = l.shape;
    if (out.has(src.name)) {
      const back = isLayoutOp(l) && s[0] === c && s[1] === a && s[2] === b;
      if (!back && s[0] === a && s[1] === b) out.add(l.name);
    } else if (isLayoutOp(l) && s[0] === b && s[1] === c && s[2] === a) {
      out.add(l.name);
    }
  }
  return out;
}

/**
 * (H, W, C) values as (C, H, W), the order the maps are drawn in.
 * @param {ArrayLike<number>} data
 * @param {number} h
 * @param {number} w
 * @param {number} c
 */
export function toChannelsFirst(data, h, w, c) {
  const out = new Float32Array(h * w * c);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let k = 0; k < c; k++) out[k * h * w + y * w + x] = data[(y * w + x) * c + k];
  return out;
}

/**
 * A name cut to ``max`` characters in the middle, keeping whole dotted parts where it can:
 * 'denseblock1.denselayer12.norm1' -> 'denseblock1…norm1' (the whole name goes in a title).
 * @param {string} name
 * @param {number} max
 */
export function cutMiddle(name, max = 18) {
  if (name.length <= max) return name;
  const parts = name.split(".");
  let tail = parts.length > 1 ? parts[parts.length - 1] : "";
  if (parts.length > 1 && parts[0].length + tail.length + 1 <= max) {
    for (let i = parts.length - 2; i > 0; i--) {
      const longer = parts[i] + "." + tail;
      if (parts[0].length + longer.length + 1 > max) break;
      tail = longer;
    }
    return parts[0] + "…" + tail;
  }
  const keep = max - 1;
  return name.slice(0, Math.ceil(keep / 2)) + "…" + name.slice(name.length - Math.floor(keep / 2));
}

/**
 * A page of a channels-last layer as the maps are drawn: channels ``start`` .. ``start + count``
 * of the whole (H, W, C) tensor, as (count, H, W) with each channel's range (for 'unit' colours).
 * @param {{header: any, data: ArrayLike<number>}} whole the layer's whole tensor, as the server sends it
 * @param {number} start
 * @param {number} count
 */
export function channelsFirstPage(whole, start, count) {
  const [h, w, c] = whole.header.shape;
  const n = Math.max(0, Math.min(count, c - start));
  const all = toChannelsFirst(whole.data, h, w, c);
  const data = all.subarray(start * h * w, (start + n) * h * w);
  const ch_min = [], ch_max = [];
  for (let i = 0; i < n; i++) {
    let lo = Infinity, hi = -Infinity;
    for (let j = i * h * w; j < (i + 1) * h * w; j++) { lo = Math.min(lo, data[j]); hi = Math.max(hi, data[j]); }
    ch_min.push(lo); ch_max.push(hi);
  }
  return { header: { ...whole.header, shape: [n, h, w], ch_min, ch_max }, data };
}
