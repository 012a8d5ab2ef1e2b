// @ts-check
// The server's binary arrays (server/encoding.py), decoded. Pure functions: no DOM, no
// fetch, so node --test checks them against the Python encoder (tests/js/binary.test.mjs).

/**
 * A decoded array: the JSON header (dtype, shape and whatever the server adds, such as
 * the per-channel ch_min / ch_max of a page) and the values as float32.
 * @typedef {{header: {dtype: string, shape: number[], [key: string]: any}, data: Float32Array}} DecodedArray
 */

/**
 * One IEEE 754 half-precision number (its 16 bits) as a JS number: subnormals, ±0,
 * ±Infinity and NaN included.
 * @param {number} h the 16 bits, 0..0xffff
 * @returns {number}
 */
export function halfToFloat(h) {
  const s = (h & 0x8000) >> 15;
  const e = (h & 0x7c00) >> 10;
  const f = h & 0x03ff;
  let v;
  if (e === 0) v = (f / 1024) * 2 ** -14;
  else if (e === 31) v = f ? NaN : Infinity;
  else v = (1 + f / 1024) * 2 ** (e - 15);
  return s ? -v : v;
}

/** @type {Float32Array | null} every float16 bit pattern's value, built on first use (256 kB) */
let HALF = null;

/**
 * float16 bits to float32 values through the table of all 65,536 patterns: one lookup per
 * value (the overview's first page holds millions; halfToFloat per value took tens of ms).
 * @param {Uint16Array} raw
 * @returns {Float32Array}
 */
export function halvesToFloats(raw) {
  if (!HALF) {
    HALF = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) HALF[h] = halfToFloat(h);
  }
  const out = new Float32Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = HALF[raw[i]];
  return out;
}

/**
 * Decode the server's binary array (encode_array): uint32 header length, JSON header, then the data.
 * float32 data is a view into ``buffer`` (no copy); ``byteOffset``/``byteLength`` pick one array
 * out of a larger response.
 * @param {ArrayBuffer} buffer
 * @param {number} [byteOffset] where the array starts (a multiple of 8 in encode_many)
 * @param {number} [byteLength] its length, to the end of the buffer by default
 * @returns {DecodedArray}
 */
export function decodeArray(buffer, byteOffset = 0, byteLength = buffer.byteLength - byteOffset) {
  const n = new DataView(buffer, byteOffset).getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, byteOffset + 4, n)));
  const offset = byteOffset + 4 + n, bytes = byteLength - 4 - n;
  const data = header.dtype === "float32"
    ? new Float32Array(buffer, offset, bytes / 4)
    : halvesToFloats(new Uint16Array(buffer, offset, bytes / 2));
  return { header, data };
}

/**
 * Decode several arrays sent in one response (encode_many): uint32 count, 4 zero bytes,
 * then per array uint32 length, 4 zero bytes, the array, zero padding to 8 bytes.
 * @param {ArrayBuffer} buf
 * @returns {DecodedArray[]}
 */
export function decodeMany(buf) {
  const view = new DataView(buf);
  const n = view.getUint32(0, true);
  const out = [];
  let off = 8;
  for (let i = 0; i < n; i++) {
    const len = view.getUint32(off, true);
    off += 8;
    out.push(decodeArray(buf, off, len));
    off += len + ((8 - (len % 8)) % 8);
  }
  return out;
}

/**
 * A map's values sent as base64 little-endian float32 (encoding.pack_map).
 * @param {string} s
 * @returns {Float32Array}
 */
export function b64Floats(s) {
  const bin = atob(s);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Float32Array(bytes.buffer);
}
