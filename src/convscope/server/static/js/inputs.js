// @ts-check
// Choosing the image: built-in samples, an uploaded file, or a digit drawn by hand.

import { postFile, postJSON } from "./api.js";
import { el } from "./dom.js";
import { say } from "./i18n.js";

export function renderSamples(root, info, current, onPick) {
  root.replaceChildren();
  for (const s of info.samples) {
    const b = el("button", `sample ${s.id === current ? "active" : ""}`);
    b.title = `${say(s.label_i18n || s.label)} (${say(s.source_i18n || s.source)})`;
    b.dataset.image = s.id;
    // thumbnails load once the overview is drawn (the first paint needs the server more)
    const url = `/api/models/${encodeURIComponent(info.name)}/images/${s.id}.png`;
    const img = el("img");
    img.alt = say(s.label_i18n || s.label);
    if (root.dataset.loaded === info.name) img.src = url;
    else img.dataset.src = url;
    b.appendChild(img);
    b.onclick = () => onPick(s.id);
    root.appendChild(b);
  }
  root.dataset.loaded = info.name;
}

/** Upload a file; resolves to the new image id. Errors carry the server's message. */
export async function upload(model, file) {
  const res = await postFile(`/api/models/${encodeURIComponent(model)}/images`, file, file.name || "image");
  return res.image;
}

/** Have the server fetch an image from a URL (public addresses only) into the same store as uploads. */
export async function uploadUrl(model, url) {
  const res = await postJSON(`/api/models/${encodeURIComponent(model)}/images/url`, { url });
  return res.image;
}

/**
 * A drawing canvas (white ink on black, like MNIST). While drawing, the picture is
 * sent to the server at most once at a time (``onImage(blob, false)``: a live
 * prediction); when the stroke ends it is sent once more as final (``onImage(blob, true)``).
 */
export function drawingPad(canvas, onImage) {
  const ctx = canvas.getContext("2d");
  const clear = () => {
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
  };
  clear();
  let drawing = false, last = null, busy = false, pending = null, touched = false;
  const send = async (final) => {
    if (busy) { pending = pending === true ? true : final; return; }
    busy = true;
    const blob = await new Promise((r) => canvas.toBlob(r, "image/png"));
    try { await onImage(blob, final); } finally {
      busy = false;
      if (pending !== null) { const f = pending; pending = null; send(f); }
    }
  };
  const point = (ev) => {
    const r = canvas.getBoundingClientRect();
    return [((ev.clientX - r.left) / r.width) * canvas.width, ((ev.clientY - r.top) / r.height) * canvas.height];
  };
  canvas.addEventListener("pointerdown", (ev) => {
    drawing = true;
    touched = true;
    last = point(ev);
    canvas.setPointerCapture(ev.pointerId);
  });
  canvas.addEventListener("pointermove", (ev) => {
    if (!drawing) return;
    const p = point(ev);
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = canvas.width / 10;
    ctx.lineCap = "round";
    ctx.beginPath();
    ctx.moveTo(...last);
    ctx.lineTo(...p);
    ctx.stroke();
    last = p;
    send(false);
  });
  const end = () => { if (drawing) { drawing = false; send(true); } };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  return { clear: () => { clear(); touched = false; }, touched: () => touched };
}
