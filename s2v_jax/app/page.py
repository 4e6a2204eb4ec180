"""The page: one HTML document, its style and script inline (no CDN, no fonts, no remote calls;
the server's Content-Security-Policy forbids any other origin too)."""

PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Speech2Vid</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
header{background:#1d2330;color:#fff;padding:10px 20px;display:flex;gap:18px;align-items:baseline;flex-wrap:wrap}
header h1{font-size:20px;margin:0}
header .info{font-size:13px;color:#c8cdd8}
#status{font-size:13px;margin-left:auto}
#status.ready{color:#8fe3a1}
nav{padding:10px 20px 0;display:flex;gap:6px}
nav button{border:1px solid #c9ced8;border-bottom:none;background:#e6e8ee;padding:8px 22px;font-size:15px;
  border-radius:6px 6px 0 0;cursor:pointer}
nav button.active{background:#fff;font-weight:600}
section{background:#fff;margin:0 20px 20px;padding:16px 20px;border:1px solid #c9ced8;border-radius:0 6px 6px 6px}
form{display:flex;gap:18px;flex-wrap:wrap;align-items:flex-end}
form label{display:flex;flex-direction:column;gap:4px;font-size:14px;font-weight:600}
form label span{font-weight:400;font-size:12px;color:#5a6272}
form button{background:#2e6ee6;color:#fff;border:none;border-radius:5px;padding:9px 18px;font-size:15px;cursor:pointer}
form button:disabled{background:#9bb2de;cursor:default}
.run{margin-top:14px;display:flex;gap:12px;align-items:center;min-height:22px}
progress{width:320px;height:16px}
.stage{font-size:14px;color:#3a4252}
.error{color:#b3261e;background:#fdecea;border:1px solid #f3b8b2;padding:7px 10px;border-radius:5px;font-size:14px}
.warnings{color:#7a5a00;font-size:13px;margin:6px 0;padding-left:18px}
.out{display:flex;gap:22px;flex-wrap:wrap;margin-top:12px;align-items:flex-start}
video{width:420px;max-width:100%;max-height:480px;background:#000;border-radius:4px}
.scores{border-collapse:collapse;font-size:15px;margin:10px 0}
.scores th{text-align:left;padding:4px 14px 4px 0;font-weight:600}
.scores td{padding:4px 0;font-variant-numeric:tabular-nums}
.note{font-size:12px;color:#5a6272;max-width:330px}
.strip{margin:14px 0 0;width:100%}
.strip img{max-width:100%;border:1px solid #ddd}
.strip figcaption{font-size:12px;color:#5a6272}
a.download{display:inline-block;margin-top:4px;font-size:15px}
[hidden]{display:none!important}
</style></head>
<body>
<header><h1>Speech2Vid</h1>
<span class="info" id="model-info"></span>
<span id="status">loading the model&hellip;</span></header>
<nav><button id="tab-photo" class="active" data-panel="photo">Photo</button>
<button id="tab-redub" data-panel="redub">Re-dub</button></nav>

<section id="panel-photo">
<form id="photo-form">
<label>Photo <span id="photo-count">a photo with a visible face</span>
<input type="file" id="photo-images" name="images" accept="image/*" multiple required></label>
<label>Speech <span>any audio (or video) file</span>
<input type="file" id="photo-audio" name="audio" accept="audio/*,video/*" required></label>
<button id="photo-run" type="submit">Make the video</button>
</form>
<div id="photo-result"></div>
</section>

<section id="panel-redub" hidden>
<form id="redub-form">
<label>Video <span>a video with a visible face</span>
<input type="file" id="redub-video" name="video" accept="video/*" required></label>
<label>New speech <span>any audio (or video) file</span>
<input type="file" id="redub-audio" name="audio" accept="audio/*,video/*" required></label>
<button id="redub-run" type="submit">Re-dub the video</button>
</form>
<div id="redub-result"></div>
</section>

<template id="result-template">
<div class="run"><progress max="1" value="0" class="bar"></progress><span class="stage"></span></div>
<p class="error" hidden></p>
<ul class="warnings" hidden></ul>
<div class="out" hidden>
 <video controls preload="auto" playsinline></video>
 <div>
  <a class="download" download>Download the video</a>
  <table class="scores">
   <tr><th>AV offset</th><td class="offset">&hellip;</td></tr>
   <tr><th>LSE-C</th><td class="lsec">&hellip;</td></tr>
   <tr><th>LSE-D</th><td class="lsed">&hellip;</td></tr>
  </table>
  <p class="note">Scored by the judge (the sync expert) on the video above. AV offset: frames by which the
  sound is late (+) or early (&minus;) against the lips, 0 = in sync. LSE-C: the judge's confidence
  that lips and sound match (higher is better); LSE-D: distance at the best offset (lower is better).</p>
 </div>
 <figure class="strip" hidden><img alt="mouth strip"><figcaption></figcaption></figure>
</div>
</template>

<script>
"use strict";
const $ = (id) => document.getElementById(id);
const STRIP_CAPTION = {
  photo: "The mouth at 8 frames spread over the video: the result (model) above the photo's own (static baseline).",
  redub: "The mouth at 8 frames spread over the video: the source video's (real video) above the result (model)."
};
const STAGE_UNITS = {"face tracking": " frames", "generation": " frames", "encoding": ""};
const STAGE_NAMES = {"judge": "judge: AV offset, LSE-C and the mouth strip"};
for (const b of document.querySelectorAll("nav button")) {
  b.addEventListener("click", () => {
    for (const o of document.querySelectorAll("nav button")) o.classList.toggle("active", o === b);
    for (const p of ["photo", "redub"]) $("panel-" + p).hidden = (p !== b.dataset.panel);
  });
}
async function info() {
  try {
    const r = await (await fetch("/api/info")).json();
    $("model-info").textContent = "generator: " + r.checkpoint + " \u00b7 judge: " + r.judge +
      " \u00b7 uploads up to " + r.max_upload_mb + " MB per file";
    $("photo-count").textContent = r.photos === "1" ? "one photo with a visible face"
                                                    : r.photos + " photos of one face";
    $("status").textContent = r.ready ? (r.warmup_error ? "ready (warm-up failed: " + r.warmup_error + ")"
                                                        : "ready") : "loading the model\u2026";
    $("status").classList.toggle("ready", r.ready);
    if (!r.ready) setTimeout(info, 1000);
  } catch (e) { $("status").textContent = "the app is not answering"; setTimeout(info, 2000); }
}
info();
function fmt(x, d) { return (x === null || x === undefined) ? "n/a" : Number(x).toFixed(d); }
function setup(kind) {
  const form = $(kind + "-form"), button = $(kind + "-run"), box = $(kind + "-result");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    box.innerHTML = "";
    box.appendChild($("result-template").content.cloneNode(true));
    const q = (c) => box.querySelector(c);
    const ids = {bar: "progress", stage: "stage", error: "error", warnings: "warnings", out: "out",
                 video: "player", download: "download", offset: "offset", lsec: "lsec", lsed: "lsed",
                 strip: "strip"};
    for (const [c, id] of Object.entries(ids)) q(c === "video" ? "video" : "." + c).id = kind + "-" + id;
    const bar = $(kind + "-progress"), stage = $(kind + "-stage"), err = $(kind + "-error");
    const fail = (msg) => { err.textContent = "error: " + msg; err.hidden = false; bar.hidden = true;
                            stage.textContent = ""; button.disabled = false; };
    button.disabled = true;
    stage.textContent = "uploading\u2026";
    let job;
    try {
      const r = await fetch("/api/" + kind, {method: "POST", body: new FormData(form)});
      job = await r.json();
      if (!r.ok) return fail(job.error || ("HTTP " + r.status));
    } catch (e) { return fail("the upload failed: " + e); }
    let shown = false;
    const poll = async () => {
      let s;
      try { s = await (await fetch("/api/jobs/" + job.id)).json(); }
      catch (e) { return fail("lost contact with the app"); }
      bar.value = s.progress;
      if (s.state === "queued") stage.textContent = s.ahead ? ("queued: " + s.ahead + " job(s) ahead")
                                                             : "waiting for the model to load\u2026";
      else if (s.state === "running") stage.textContent = (STAGE_NAMES[s.stage] || s.stage) +
          (s.total > 1 && s.stage in STAGE_UNITS ? " " + s.done + "/" + s.total + STAGE_UNITS[s.stage] : "") +
          "\u2026";
      if (s.warnings && s.warnings.length) {
        const ul = $(kind + "-warnings"); ul.innerHTML = ""; ul.hidden = false;
        for (const w of s.warnings) {
          const li = document.createElement("li"); li.textContent = "warning: " + w; ul.appendChild(li);
        }
      }
      const res = s.result || {};
      if (res.video && !shown) {
        shown = true;
        const v = $(kind + "-player"); v.src = res.video;
        const a = $(kind + "-download"); a.href = res.video; a.download = "s2v_" + kind + ".mp4";
        $(kind + "-out").hidden = false;
      }
      if (s.state === "done") {
        $(kind + "-offset").textContent = res.offset === null || res.offset === undefined ? "n/a"
            : (res.offset > 0 ? "+" : "") + res.offset + (Math.abs(res.offset) === 1 ? " frame" : " frames");
        $(kind + "-lsec").textContent = fmt(res.lse_c, 3);
        $(kind + "-lsed").textContent = fmt(res.lse_d, 3);
        if (res.judge_error) { $(kind + "-offset").textContent = "n/a: " + res.judge_error; }
        if (res.strip) {
          const f = $(kind + "-strip"); f.querySelector("img").src = res.strip;
          f.querySelector("figcaption").textContent = STRIP_CAPTION[kind]; f.hidden = false;
        }
        bar.hidden = true;
        stage.textContent = res.seconds_of_video + " s of video (" + res.frames + " frames) in " +
          s.elapsed_s + " s; the video was ready after " + s.video_s + " s";
        button.disabled = false;
        return;
      }
      if (s.state === "error" || s.state === "cancelled") return fail(s.error);
      setTimeout(poll, 300);
    };
    poll();
  });
}
setup("photo");
setup("redub");
</script>
</body></html>
"""
