"""The page: draw a digit, or for a model of photos upload or take one; one self-contained HTML
document (no CDN, no fonts, no network).

Drawing (mouse, touch or pen, through pointer events) sends the canvas as a PNG to
/api/predict, debounced; the answer shows the class, a bar per class and the 28×28 image the
model saw. An upload button (a real file input, reachable with the keyboard) sends a file. When
the server wants an API key, the page asks for it and keeps it in memory only.
"""

from __future__ import annotations

import html
import json
from typing import Any

# a valid 1×1 transparent GIF, shown before the first prediction
BLANK = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>trainlab: __TITLE__</title>
<link rel="icon" href="data:,">
<style>
:root { color-scheme: light; }
body { font-family: system-ui, sans-serif; margin: 0 auto; padding: 1rem; max-width: 760px;
       color: #222; }
h1 { font-size: 1.3rem; margin: 0 0 .25rem; }
.run { color: #555; font-size: .9rem; margin-bottom: 1rem; }
.cols { display: flex; flex-wrap: wrap; gap: 1.25rem; }
.pad { flex: 1 1 280px; max-width: 320px; }
canvas { width: 100%; aspect-ratio: 1; border: 2px solid #444; border-radius: 6px;
         background: #fff; touch-action: none; cursor: crosshair; display: block; }
.buttons { display: flex; gap: .5rem; margin-top: .5rem; flex-wrap: wrap; }
button, label.upload { font: inherit; padding: .45rem .9rem; border: 1px solid #444;
         border-radius: 4px; background: #f4f4f4; cursor: pointer; }
button:focus-visible, label.upload:focus-within { outline: 3px solid #2563eb; }
input[type=file] { position: absolute; opacity: 0; width: 1px; height: 1px; }
.answer { flex: 1 1 260px; }
#label { font-size: 3.5rem; font-weight: 700; line-height: 1; min-height: 3.5rem; }
#prob { color: #555; min-height: 1.2rem; }
.bars { margin-top: .75rem; }
.bar { display: flex; align-items: center; gap: .4rem; font-size: .85rem; margin: 2px 0; }
.bar span.name { width: 4.5rem; text-align: right; overflow: hidden; white-space: nowrap; }
.bar .track { flex: 1; background: #eee; height: .8rem; border-radius: 3px; }
.bar .fill { background: #2563eb; height: 100%; border-radius: 3px; width: 0; }
.bar.best .fill { background: #16a34a; }
.seen { margin-top: .75rem; display: flex; align-items: center; gap: .6rem; font-size: .85rem; }
#preview { width: 84px; height: 84px; image-rendering: pixelated; background: #000;
           border: 1px solid #444; }
#status { color: #b91c1c; min-height: 1.2rem; font-size: .9rem; margin-top: .5rem; }
.key { display: none; margin: .5rem 0; } .key input { font: inherit; padding: .3rem; }
</style></head>
<body>
<h1>Draw a digit</h1>
<div class="run" id="run">__RUN__</div>
<div class="key" id="key"><label>API key <input id="key-input" type="password"
  autocomplete="off"></label> <button id="key-save" type="button">Use</button></div>
<div class="cols">
  <div class="pad">
    <canvas id="pad" width="280" height="280" aria-label="drawing area"></canvas>
    <div class="buttons">
      <button id="clear" type="button">Clear</button>
      <label class="upload">Upload an image<input id="upload" type="file"
        accept="image/*"></label>
      __CAMERA__
    </div>
  </div>
  <div class="answer" aria-live="polite">
    <div id="label">–</div>
    <div id="prob">__HINT__</div>
    <div class="bars" id="bars"></div>
    <div class="seen"><img id="preview" alt="what the model saw" src="__BLANK__">
      <span>what the model saw (__SIZE__)</span></div>
    <div id="status" role="status"></div>
  </div>
</div>
<script>
const MODEL = __MODEL__;
const pad = document.getElementById("pad"), ctx = pad.getContext("2d");
const bars = document.getElementById("bars");
let apiKey = null, drawing = false, last = null, timer = null, dirty = false, seq = 0;

function blank() {
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, pad.width, pad.height); dirty = false;
}
blank();
for (const name of MODEL.classes) {
  const row = document.createElement("div"); row.className = "bar";
  row.innerHTML = '<span class="name"></span><div class="track"><div class="fill"></div></div>' +
                  '<span class="p">0%</span>';
  row.querySelector(".name").textContent = name; bars.appendChild(row);
}
function point(e) {
  const r = pad.getBoundingClientRect();
  return [(e.clientX - r.left) * pad.width / r.width, (e.clientY - r.top) * pad.height / r.height];
}
if (!MODEL.photos) {  // digits are drawn; photos are uploaded or taken with the camera
  pad.addEventListener("pointerdown", e => {
    drawing = true; last = point(e); pad.setPointerCapture(e.pointerId); stroke(e);
  });
  pad.addEventListener("pointermove", e => { if (drawing) stroke(e); });
  for (const ev of ["pointerup", "pointercancel", "pointerleave"])
    pad.addEventListener(ev, () => { if (drawing) { drawing = false; schedule(0); } });
}
function showPhoto(file) {  // the photo as given, fitted into the pad
  if (!window.createImageBitmap) return;
  createImageBitmap(file).then(img => {
    blank();
    const s = Math.min(pad.width / img.width, pad.height / img.height);
    const w = img.width * s, h = img.height * s;
    ctx.drawImage(img, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
  }).catch(() => {});
}
function stroke(e) {
  const p = point(e);
  ctx.strokeStyle = "#000"; ctx.lineWidth = 18; ctx.lineCap = "round"; ctx.lineJoin = "round";
  ctx.beginPath(); ctx.moveTo(last[0], last[1]); ctx.lineTo(p[0], p[1]); ctx.stroke();
  last = p; dirty = true; schedule(250);
}
function schedule(ms) {
  clearTimeout(timer);
  timer = setTimeout(() => { if (dirty) pad.toBlob(b => send(b, "image/png"), "image/png"); }, ms);
}
document.getElementById("clear").addEventListener("click", () => {
  blank(); show(null); status("");
});
for (const id of ["upload", "camera"]) {
  const input = document.getElementById(id);
  if (!input) continue;
  input.addEventListener("change", e => {
    const file = e.target.files[0];
    if (!file) return;
    if (MODEL.photos) showPhoto(file);
    send(file, file.type || "application/octet-stream");
    e.target.value = "";
  });
}
document.getElementById("key-save").addEventListener("click", () => {
  apiKey = document.getElementById("key-input").value; status("key set");
});
function status(text) { document.getElementById("status").textContent = text; }
async function send(body, type) {
  const mine = ++seq, headers = {"Content-Type": type};
  if (apiKey) headers["Authorization"] = "Bearer " + apiKey;
  let reply;
  try {
    reply = await fetch("api/predict", {method: "POST", headers, body});
  } catch (err) { status("the server did not answer"); return; }
  const data = await reply.json().catch(() => ({error: "unreadable answer"}));
  if (mine !== seq) return;  // a newer drawing was sent meanwhile
  if (reply.status === 401) { document.getElementById("key").style.display = "block"; }
  if (!reply.ok) { show(null); status(data.error || ("error " + reply.status)); return; }
  status(""); show(data);
}
function show(data) {
  document.getElementById("label").textContent = data ? data.label : "–";
  document.getElementById("prob").textContent = data
    ? (100 * data.probability).toFixed(1) + "% sure" + (data.low_confidence ? " (unsure)" : "")
      + " · " + data.milliseconds.toFixed(0) + " ms"
    : MODEL.hint;
  const rows = bars.querySelectorAll(".bar");
  rows.forEach((row, i) => {
    const p = data ? data.probabilities[i] : 0;
    row.querySelector(".fill").style.width = (100 * p).toFixed(1) + "%";
    row.querySelector(".p").textContent = (100 * p).toFixed(0) + "%";
    row.classList.toggle("best", !!data && i === data.index);
  });
  document.getElementById("preview").src = data
    ? "data:image/png;base64," + data.preview_png
    : "__BLANK__";
}
</script>
</body></html>
"""


def render_page(model: dict[str, Any]) -> str:
    """The page for one model: its run id, model, test accuracy and classes are written in."""
    metrics = model.get("metrics") or {}
    accuracy = metrics.get("test_acc")
    run = (
        f"run <b>{html.escape(str(model.get('run')))}</b> · model "
        f"{html.escape(str(model.get('model')))} on {html.escape(str(model.get('dataset')))}"
        + (f" · test accuracy {100 * accuracy:.2f}%" if accuracy is not None else "")
        + f" · classes {html.escape(', '.join(model['classes']))}"
    )
    photos = model.get("kind", "digits") != "digits"
    hint = "upload a photo, or take one" if photos else "draw, or upload an image"
    public = {"classes": model["classes"], "run": model.get("run"), "photos": photos, "hint": hint}
    # </script> inside JSON would end the script early; escape the slash
    script_json = json.dumps(public).replace("</", "<\\/")
    h, w = (model.get("input_shape") or [1, 28, 28])[-2:]
    camera = (
        '<label class="upload">Take a photo<input id="camera" type="file" accept="image/*" '
        'capture="environment"></label>'
    )
    page = PAGE.replace("__RUN__", run).replace("__MODEL__", script_json)
    page = page.replace("__TITLE__", "classify a photo" if photos else "draw a digit")
    page = page.replace("__CAMERA__", camera if photos else "").replace("__HINT__", hint)
    return page.replace("__SIZE__", f"{h}×{w}").replace("__BLANK__", BLANK)
