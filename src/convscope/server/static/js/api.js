// @ts-check
// Talking to the server. Every number the page shows arrives through these functions.

import { decodeMany } from "./binary.js";

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

/** POST a JSON body; the answer's JSON. */
export async function postJSON(url, body) {
  const res = await check(await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) }));
  return res.json();
}

/**
 * GET url and decode the several binary arrays of its answer (the server's encode_many).
 * @param {string} url
 */
export async function getMany(url) {
  const res = await check(await fetch(url));
  return decodeMany(await res.arrayBuffer());
}

/**
 * One entry of /api/models/M/activations?pages=: LAYER:START:COUNT:DTYPE[:SIZE]. Entries are
 * joined by '|', so a '|' (and the escape '\' itself) in the layer's name goes escaped with
 * '\' (routes_network.split_pages); a ':' needs none, the server reads the numbers from the right.
 * @param {string} name
 * @param {number} start
 * @param {number} count
 * @param {string} dtype
 * @param {number} [size] the pixels the page draws a map in (0: full resolution)
 */
export const pageEntry = (name, start, count, dtype, size = 0) =>
  `${name.replace(/[\\|]/g, "\\$&")}:${start}:${count}:${dtype}${size ? `:${size}` : ""}`;

export const q = (params) => new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== null)).toString();
