// Talking to the server. Every number the page shows arrives through these functions.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// The access token (convscope serve --token, or on a non-local address) arrives once, in the
// printed address (?token=...). The server answers that first load with an HttpOnly cookie
// that every later same-origin request (fetch and <img>) carries, so the page never stores
// or sends the token itself: it takes it out of the address bar at once, where it would stay
// in the history and in every copied link, and out of the reach of scripts.
function forgetToken() {
  const url = new URL(location.href);
  if (url.searchParams.has("token")) {
    url.searchParams.delete("token");
    history.replaceState(history.state, "", url);
  }
  try { sessionStorage.removeItem("convscope-token"); } catch (e) { /* storage disabled */ }  // older pages kept it there
}
forgetToken();

async function check(res) {
  if (res.ok) return res;
  let msg = `${res.status} ${res.statusText}`;
  try {
    const body = await res.json();
    if (typeof body.detail === "string") msg = body.detail;
    else if (Array.isArray(body.detail)) msg = body.detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
  } catch (e) { /* not JSON */ }
  throw new ApiError(res.status, msg);
}

export async function getJSON(url) {
  const res = await check(await fetch(url));
  return res.json();
}

export async function postFile(url, blob, filename = "image") {
  const form = new FormData();
  form.append("file", blob, filename);
  const res = await check(await fetch(url, { method: "POST", body: form }));
  return res.json();
}

function halfToFloat(h) {
  const s = (h & 0x8000) >> 15;
  const e = (h & 0x7c00) >> 10;
  const f = h & 0x03ff;
  let v;
  if (e === 0) v = (f / 1024) * 2 ** -14;
  else if (e === 31) v = f ? NaN : Infinity;
  else v = (1 + f / 1024) * 2 ** (e - 15);
  return s ? -v : v;
}

/** Decode the server's binary array: uint32 header length, JSON header, then the data. */
export function decodeArray(buffer) {
  const n = new DataView(buffer).getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, n)));
  const offset = 4 + n;
  let data;
  if (header.dtype === "float32") {
    data = new Float32Array(buffer, offset);
  } else {
    const raw = new Uint16Array(buffer, offset);
    data = new Float32Array(raw.length);
    for (let i = 0; i < raw.length; i++) data[i] = halfToFloat(raw[i]);
  }
  return { header, data };
}

/** Decode several arrays sent in one response (the server's encode_many). */
export async function getMany(url) {
  const res = await check(await fetch(url));
  const buf = await res.arrayBuffer();
  const view = new DataView(buf);
  const n = view.getUint32(0, true);
  const out = [];
  let off = 8;
  for (let i = 0; i < n; i++) {
    const len = view.getUint32(off, true);
    off += 8;
    out.push(decodeArray(buf.slice(off, off + len)));
    off += len + ((8 - (len % 8)) % 8);
  }
  return out;
}

export function b64Floats(s) {
  const bin = atob(s);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Float32Array(bytes.buffer);
}

export const q = (params) => new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== null)).toString();
