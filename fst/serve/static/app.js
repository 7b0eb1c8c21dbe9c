// The page of `fst serve`: lists the styles, takes a photo (picker, drop or paste), posts it to
// /api/stylize and shows the result beside the photo. No framework, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { file: null, limits: null, resultUrl: null, originalUrl: null };

// The one place for messages, under the photo's drop zone, scrolled into view when it says something.
function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
  if (message) $("error").scrollIntoView({ block: "nearest" });
}

function megabytes(bytes) {
  return `${(bytes / 1e6).toFixed(bytes < 1e7 ? 1 : 0)} MB`;
}

function card(style, checked) {
  const label = document.createElement("label");
  label.className = "card";
  const input = document.createElement("input");
  input.type = "radio";
  input.name = "style";
  input.value = style.name;
  input.checked = checked;
  // A style without a thumbnail gets its initial on a grey tile, not an <img> with no source (a broken image).
  let picture;
  if (style.thumbnail) {
    picture = document.createElement("img");
    picture.alt = style.title ? `${style.title} by ${style.artist}` : style.name;
    picture.loading = "lazy";
    picture.src = style.thumbnail;
  } else {
    picture = document.createElement("span");
    picture.className = "no-thumbnail";
    picture.setAttribute("aria-hidden", "true");
    picture.textContent = style.name.charAt(0).toUpperCase();
  }
  const credit = document.createElement("span");
  credit.className = "credit";
  const name = document.createElement("strong");
  name.textContent = style.name;
  credit.append(name, [style.title, style.artist, style.year].filter(Boolean).join(", "));
  if (style.license) credit.append(document.createElement("br"), style.license);
  label.append(input, picture, credit);
  return label;
}

async function loadStyles() {
  try {
    const response = await fetch("/api/styles");
    if (!response.ok) throw new Error(`the server answered ${response.status}`);
    const body = await response.json();
    state.limits = body;
    $("gallery").replaceChildren(...body.styles.map((s, i) => card(s, i === 0)));
    $("styles-status").textContent = `${body.styles.length} styles; photos up to ${megabytes(body.max_upload)}.`;
  } catch (err) {
    $("styles-status").textContent = "";
    showError(`Could not load the styles (${err.message}). Is fst serve still running?`);
  }
}

function setFile(file) {
  if (!file) return;
  showError("");
  if (state.limits && file.size > state.limits.max_upload) {
    showError(`${file.name} is ${megabytes(file.size)}; this server takes photos up to ` +
              `${megabytes(state.limits.max_upload)}.`);
    return;
  }
  state.file = file;
  $("file-name").textContent = `${file.name || "pasted image"} (${megabytes(file.size)})`;
  if (state.originalUrl) URL.revokeObjectURL(state.originalUrl);
  state.originalUrl = URL.createObjectURL(file);
  $("original").src = state.originalUrl;
  $("original").hidden = false;
}

function errorMessage(xhr) {
  let detail = "";
  try {
    detail = JSON.parse(new TextDecoder().decode(xhr.response)).error || "";
  } catch (err) {
    detail = "";
  }
  switch (xhr.status) {
    case 0: return "Could not reach the server. Is fst serve still running?";
    case 413: return state.limits
      ? `The photo is too large; this server takes photos up to ${megabytes(state.limits.max_upload)}.`
      : "The photo is too large for this server.";
    case 415: return "That file is not an image this server can read (send JPEG, PNG, WebP, BMP or TIFF).";
    case 503: {
      const wait = xhr.getResponseHeader("Retry-After");
      return `The server is busy${wait ? `; try again in ${wait} s` : ""}.`;
    }
    default: return detail ? `Could not stylize the photo: ${detail}` : `The server answered ${xhr.status}.`;
  }
}

function stylize(event) {
  event.preventDefault();
  showError("");
  const style = document.querySelector('input[name="style"]:checked');
  if (!style) return showError("Choose a style first.");
  if (!state.file) return showError("Choose a photo first: drop it on the box, paste it, or pick a file.");

  const params = new URLSearchParams({
    style: style.value,
    strength: $("strength").value,
    preserve_color: $("preserve-color").checked ? "true" : "false",
    max_size: $("max-size").value,
    format: $("format").value,
  });
  const body = new FormData();
  body.append("image", state.file, state.file.name || "pasted.png");

  const xhr = new XMLHttpRequest();
  xhr.open("POST", `/api/stylize?${params}`);
  xhr.responseType = "arraybuffer";
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable) {
      $("progress").max = e.total;
      $("progress").value = e.loaded;
    }
    $("status").textContent = "Uploading…";
  };
  xhr.upload.onload = () => {
    $("progress").removeAttribute("value");
    $("status").textContent = "Stylizing…";
  };
  xhr.onloadend = () => {
    $("go").disabled = false;
    $("progress").hidden = true;
    $("status").textContent = "";
    if (xhr.status !== 200) return showError(errorMessage(xhr));
    const type = xhr.getResponseHeader("Content-Type") || "image/png";
    if (state.resultUrl) URL.revokeObjectURL(state.resultUrl);
    state.resultUrl = URL.createObjectURL(new Blob([xhr.response], { type }));
    const extension = { "image/jpeg": "jpg", "image/png": "png", "image/webp": "webp" }[type] || "png";
    const stem = (state.file.name || "photo").replace(/\.[^.]*$/, "");
    $("result").src = state.resultUrl;
    $("result").hidden = false;
    $("download").href = state.resultUrl;
    $("download").download = `${stem}-${style.value}.${extension}`;
    $("download").hidden = false;
    $("status").textContent = "Done.";
    $("result").addEventListener("load", () => $("result").scrollIntoView({ block: "nearest" }), { once: true });
  };
  $("go").disabled = true;
  $("progress").hidden = false;
  $("progress").removeAttribute("value");
  $("status").textContent = "Uploading…";
  xhr.send(body);
}

function init() {
  const drop = $("drop");
  $("file").addEventListener("change", () => setFile($("file").files[0]));
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    setFile(e.dataTransfer.files[0]);
  });
  document.addEventListener("paste", (e) => {
    const file = [...e.clipboardData.files].find((f) => f.type.startsWith("image/"));
    if (file) setFile(file);
  });
  $("strength").addEventListener("input", () => {
    $("strength-value").textContent = `${Math.round($("strength").value * 100)}%`;
  });
  $("form").addEventListener("submit", stylize);
  loadStyles();
}

init();
