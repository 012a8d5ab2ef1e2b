// The page's decoding of the server's binary arrays (static/js/binary.js), without a browser.
// float16: all 65,536 bit patterns against CPython's own half-precision unpacking
// (struct format 'e') and against a second decoder written here from the IEEE 754 layout;
// encode_many: real bytes from convscope.server.encoding decoded back to the values the
// Python encoder was given. Run with: node --test tests/js/  (after pip install -e .)

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { halfToFloat, halvesToFloats, decodeMany, b64Floats } from "../../src/convscope/server/static/js/binary.js";

const PYTHON = process.env.PYTHON || "python3";

/** Run a Python snippet; its stdout as a string (raw bytes when binary). */
function python(code, binary = false) {
  const out = execFileSync(PYTHON, ["-c", code], { maxBuffer: 64 << 20 });
  return binary ? out : out.toString();
}

/** An independent half decoder: rebuild the float32 bit pattern (sign, rebiased exponent, mantissa). */
function halfViaFloat32Bits(h) {
  const sign = (h >> 15) << 31, exp = (h >> 10) & 0x1f;
  let mant = h & 0x3ff, bits;
  if (exp === 0x1f) bits = sign | 0x7f800000 | (mant << 13);
  else if (exp !== 0) bits = sign | ((exp - 15 + 127) << 23) | (mant << 13);
  else if (mant === 0) bits = sign;
  else {  // subnormal: shift the mantissa up until its leading 1 is the implicit bit
    let e = -14;
    while (!(mant & 0x400)) { mant <<= 1; e -= 1; }
    bits = sign | ((e + 127) << 23) | ((mant & 0x3ff) << 13);
  }
  const v = new DataView(new ArrayBuffer(4));
  v.setUint32(0, bits >>> 0);
  return v.getFloat32(0);
}

const sameNumber = (a, b) => Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b));

test("every float16 bit pattern decodes as CPython's struct 'e' and as the IEEE layout says", () => {
  // CPython unpacks each pattern; its float64 bits come back as hex (NaN and -0 survive)
  const hex = python(
    "import struct,sys\n" +
    "sys.stdout.write(''.join(struct.pack('<d', struct.unpack('<e', struct.pack('<H', h))[0]).hex() for h in range(65536)))");
  assert.equal(hex.length, 65536 * 16);
  const bytes = Buffer.from(hex, "hex");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let nans = 0;
  for (let h = 0; h < 65536; h++) {
    const want = view.getFloat64(h * 8, true), got = halfToFloat(h);
    if (Number.isNaN(want)) nans++;
    assert.ok(sameNumber(got, want), `0x${h.toString(16)}: ${got} != python ${want}`);
    assert.ok(sameNumber(got, halfViaFloat32Bits(h)), `0x${h.toString(16)}: ${got} != ${halfViaFloat32Bits(h)}`);
  }
  assert.equal(nans, 2 * 1023);  // exponent 31 with a non-zero mantissa, both signs
});

test("float16 edge values: zeros, subnormals, the largest finite, infinities, NaN", () => {
  assert.ok(Object.is(halfToFloat(0x0000), 0));
  assert.ok(Object.is(halfToFloat(0x8000), -0));
  assert.equal(halfToFloat(0x0001), 2 ** -24);            // smallest subnormal
  assert.equal(halfToFloat(0x03ff), 1023 * 2 ** -24);     // largest subnormal
  assert.equal(halfToFloat(0x0400), 2 ** -14);            // smallest normal
  assert.equal(halfToFloat(0x3c00), 1);
  assert.equal(halfToFloat(0xc000), -2);
  assert.equal(halfToFloat(0x7bff), 65504);               // largest finite
  assert.equal(halfToFloat(0x7c00), Infinity);
  assert.equal(halfToFloat(0xfc00), -Infinity);
  assert.ok(Number.isNaN(halfToFloat(0x7e00)) && Number.isNaN(halfToFloat(0xfc01)));
});

// One Python run of the real encoder: encode_many of three arrays of odd sizes (so the 8-byte
// padding is exercised) with the edge values above, the float64 bits of the float16 values it
// rounded to (what the page must show), and a pack_map.
const SERVER = JSON.parse(python(`
import base64, json, struct, numpy as np
from convscope.server.encoding import encode_array, encode_many, pack_map
half = np.array([0, -0.0, 1, -2, 65504, 2**-24, 1023 * 2**-24, 2**-14, np.inf, -np.inf, np.nan, 0.1, -3.14159], dtype=np.float16)
f32 = np.linspace(-1, 1, 7, dtype=np.float32).reshape(7, 1)
blob = encode_many([encode_array(half.reshape(13, 1, 1), "float16", ch_min=[-2.0], ch_max=[65504.0]),
                    encode_array(f32, "float32"), encode_array(half[:3], "float16")])
print(json.dumps({"blob": base64.b64encode(blob).decode(),
                  "half": [struct.pack("<d", float(v)).hex() for v in half],
                  "map": pack_map(np.array([[0.5, -1.25], [3.0, 1e-8]], dtype=np.float32))}))`));

const fromHex64 = (h) => Buffer.from(h, "hex").readDoubleLE(0);

test("encode_many from the server decodes to the arrays it was given (float16 and float32 pages)", () => {
  const blob = Buffer.from(SERVER.blob, "base64");
  const arrays = decodeMany(blob.buffer.slice(blob.byteOffset, blob.byteOffset + blob.byteLength));
  assert.equal(arrays.length, 3);
  const [a, b, c] = arrays;
  assert.deepEqual(a.header, { dtype: "float16", shape: [13, 1, 1], ch_min: [-2], ch_max: [65504] });
  const want = SERVER.half.map(fromHex64);
  assert.equal(a.data.length, want.length);
  want.forEach((w, i) => assert.ok(sameNumber(a.data[i], w), `${i}: ${a.data[i]} != ${w}`));
  assert.ok(Object.is(a.data[1], -0) && a.data[8] === Infinity && Number.isNaN(a.data[10]));
  assert.deepEqual(b.header, { dtype: "float32", shape: [7, 1] });
  assert.deepEqual(Array.from(b.data), Array.from({ length: 7 }, (_, i) => Math.fround(-1 + i / 3)));
  assert.deepEqual(Array.from(c.data), [0, -0, 1]);
});

test("b64Floats reads pack_map's base64 little-endian float32", () => {
  assert.deepEqual(SERVER.map.shape, [2, 2]);
  assert.deepEqual(Array.from(b64Floats(SERVER.map.data)), [0.5, -1.25, 3, Math.fround(1e-8)]);
});

test("halvesToFloats (the table decoder of float16 pages) gives halfToFloat's value for every bit pattern", () => {
  const all = Uint16Array.from({ length: 65536 }, (_, h) => h);
  const got = halvesToFloats(all);
  for (let h = 0; h < 65536; h++) assert.ok(sameNumber(got[h], Math.fround(halfToFloat(h))), `0x${h.toString(16)}`);
});

// The overview's page of block means, as the server's route builds it (page_blob with a drawn size
// on a real trace of the default model), and numpy's float16 of the same means
const SHRUNK = JSON.parse(python(`
import base64, json, numpy as np
from convscope.server import create_app
from convscope.server.encoding import encode_many
from convscope.server.routes_network import page_blob
app = create_app(["default"])
te = app.state.registry.trace("default", "sample-0")
full = te.array("conv_1_1")[1:4]
blob = encode_many([page_blob(te, "conv_1_1", 1, 3, "float32", 13), page_blob(te, "conv_1_1", 1, 3, "float32")])
means = full.reshape(3, 13, 2, 13, 2).astype(np.float64).mean((2, 4)).astype(np.float16)
print(json.dumps({"blob": base64.b64encode(blob).decode(), "means": means.astype(float).ravel().tolist(),
                  "full": full.astype(float).ravel().tolist(), "min": full.reshape(3, -1).min(1).astype(float).tolist()}))`));

test("a page of block means decodes in place to numpy's float16 of the means; the full page to float32", () => {
  const blob = Buffer.from(SHRUNK.blob, "base64");
  const [shrunk, full] = decodeMany(blob.buffer.slice(blob.byteOffset, blob.byteOffset + blob.byteLength));
  assert.equal(shrunk.header.dtype, "float16");
  assert.deepEqual([shrunk.header.shape, shrunk.header.step, shrunk.header.full_shape], [[3, 13, 13], 2, [26, 26]]);
  assert.deepEqual(shrunk.header.ch_min, SHRUNK.min);  // the exact float32 range, not the means'
  let off = 0;
  SHRUNK.means.forEach((m, i) => { if (Math.abs(shrunk.data[i] - m) > 2 ** -24) off++; });
  assert.ok(off <= 2, `${off} of ${SHRUNK.means.length} means differ by more than float16's smallest step`);
  assert.equal(full.header.dtype, "float32");
  assert.deepEqual(Array.from(full.data), SHRUNK.full.map(Math.fround));
});
