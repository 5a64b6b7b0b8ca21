// jungle review: the queue, one clip at a time, keyboard labelling. Every change goes to the
// server at once (POST with the run's token); the server writes it to the workspace database.
"use strict";

const TOKEN = document.querySelector('meta[name="jungle-token"]').content;
const $ = (id) => document.getElementById(id);
const state = { classes: [], queue: [], pos: -1, clip: null, suggestion: 0 };

async function api(method, path, body) {
  const options = { method, headers: {} };
  if (method !== "GET") {
    options.headers["X-Jungle-Token"] = TOKEN;
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body || {});
  }
  const response = await fetch(path, options);
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function say(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

async function guarded(work) {
  try { await work(); } catch (error) { say(error.message, true); }
}

// Key presses can come faster than the server answers: run them one after another, in order,
// so each change starts from the state the previous one left.
let pending = Promise.resolve();
function enqueue(work) {
  pending = pending.then(() => guarded(work));
  return pending;
}

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function queueParams() {
  const params = new URLSearchParams({ limit: "500" });
  for (const name of ["order", "class", "site", "labelled", "min_p", "max_p"]) {
    if ($(name).value) params.set(name, $(name).value);
  }
  return params;
}

async function loadQueue() {
  const data = await api("GET", "/api/queue?" + queueParams());
  state.queue = data.clips;
  $("queue-total").textContent = `${data.total} clips, ${data.order}` + (data.total > data.clips.length ? ` (first ${data.clips.length})` : "");
  renderQueue();
  const wanted = new URLSearchParams(location.search).get("video");
  const at = wanted ? state.queue.findIndex((c) => c.video_id === wanted) : -1;
  await show(at >= 0 ? at : 0);
}

function labelText(entry) {
  return entry.labels ? entry.labels.join(", ") : "";
}

function renderQueue() {
  const list = $("queue");
  list.replaceChildren();
  state.queue.forEach((entry, index) => {
    const item = element("li");
    item.dataset.videoId = entry.video_id;
    item.appendChild(element("span", entry.filename));
    item.appendChild(entry.labels ? element("span", labelText(entry), "lab")
                                  : element("span", `${entry.top[0][0]} ${entry.top[0][1].toFixed(2)}`, "pred"));
    if (index === state.pos) item.className = "current";
    item.addEventListener("click", () => enqueue(() => show(index)));
    list.appendChild(item);
  });
}

async function show(index) {
  if (!state.queue.length) {
    state.pos = -1; state.clip = null;
    document.body.dataset.videoId = "";
    $("player").replaceChildren(element("div", "No clip matches these filters.", "note"));
    return;
  }
  state.pos = Math.max(0, Math.min(index, state.queue.length - 1));
  const entry = state.queue[state.pos];
  const clip = await api("GET", `/api/clips/${encodeURIComponent(entry.video_id)}`);
  state.clip = clip;
  state.queue[state.pos] = Object.assign(entry, { labels: clip.labels, label_source: clip.label_source });
  renderQueue();
  document.querySelector("#queue li.current")?.scrollIntoView({ block: "nearest" });
  renderClip(clip);
  document.body.dataset.videoId = clip.video_id;
  say(`clip ${state.pos + 1} of ${state.queue.length}`);
}

function renderPlayer(clip) {
  const player = $("player");
  player.replaceChildren();
  if (clip.missing) {
    player.appendChild(element("div", clip.missing, "missing"));
    return;
  }
  const base = `/api/clips/${encodeURIComponent(clip.video_id)}`;
  if (clip.media === "video") {
    const video = element("video");
    Object.assign(video, { src: base + "/video", controls: true, autoplay: true, muted: true, loop: true });
    video.addEventListener("error", () => showFrames(base, clip.video_id));
    player.appendChild(overlaid(video, clip));
    if (clip.count && clip.count.boxes.length) followVideo(video, clip);
  } else {
    showFrames(base, clip.video_id);
  }
}

// The counted tracks' boxes over the picture: a canvas laid over the video or the frame strip,
// redrawn with the boxes of the sampled frame nearest to what is shown.
const COLOURS = ["#ffd23f", "#3bceac", "#ee4266", "#8fe388", "#a480cf", "#ff9f1c", "#5bc0eb", "#f7f7f7"];

function overlaid(media, clip) {
  const stage = element("div", undefined, "stage");
  stage.appendChild(media);
  if (clip.count && clip.count.boxes.length) {
    const canvas = element("canvas", undefined, "boxes");
    stage.appendChild(canvas);
  }
  return stage;
}

function drawBoxes(canvas, boxes, left, width, height) {
  const context = canvas.getContext("2d");
  context.lineWidth = Math.max(2, canvas.width / 320);
  context.font = `${Math.max(10, Math.round(canvas.width / 40))}px system-ui, sans-serif`;
  for (const box of boxes) {
    const colour = COLOURS[(box.id - 1) % COLOURS.length];
    context.strokeStyle = colour;
    context.fillStyle = colour;
    context.strokeRect(left + box.x * width, box.y * height, box.w * width, box.h * height);
    context.fillText(String(box.id), left + box.x * width + 3, box.y * height + context.lineWidth + 10);
  }
}

function framesOf(count) {
  const frames = new Map();
  for (const box of count.boxes) {
    if (!frames.has(box.f)) frames.set(box.f, []);
    frames.get(box.f).push(box);
  }
  return [...frames.entries()].sort((a, b) => a[0] - b[0]);
}

function nearest(frames, index, within) {
  let best = null;
  for (const [frame, boxes] of frames) {
    if (Math.abs(frame - index) <= within && (!best || Math.abs(frame - index) < Math.abs(best[0] - index))) best = [frame, boxes];
  }
  return best ? best[1] : [];
}

function followVideo(video, clip) {
  const canvas = video.parentNode.querySelector("canvas.boxes");
  const frames = framesOf(clip.count);
  const fps = clip.count.fps || 25;
  const draw = () => {
    if (!canvas.isConnected) return;
    if (video.videoWidth && (canvas.width !== video.videoWidth || canvas.height !== video.videoHeight)) {
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
    }
    canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
    const shown = nearest(frames, Math.round(video.currentTime * fps), Math.max(1, Math.round(fps * 0.15)));
    drawBoxes(canvas, shown, 0, canvas.width, canvas.height);
    canvas.dataset.frameBoxes = String(shown.length);
    requestAnimationFrame(draw);
  };
  requestAnimationFrame(draw);
}

function drawStrip(img, clip) {
  const canvas = img.parentNode.querySelector("canvas.boxes");
  if (!canvas || !clip.count.strip) return;
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const frames = framesOf(clip.count);
  const fps = clip.count.fps || 25;
  const tile = img.naturalWidth / clip.count.strip.length;
  let drawn = 0;
  clip.count.strip.forEach((index, k) => {
    const shown = nearest(frames, index, Math.max(1, Math.round(fps * 0.15)));
    drawBoxes(canvas, shown, k * tile, tile, img.naturalHeight);
    drawn += shown.length;
  });
  canvas.dataset.frameBoxes = String(drawn);
}

async function showFrames(base, videoId) {
  const player = $("player");
  player.replaceChildren(element("div", "decoding frames…", "note"));
  const response = await fetch(base + "/frames.jpg");
  if (state.clip?.video_id !== videoId) return;
  if (!response.ok) {
    const data = await response.json();
    player.replaceChildren(element("div", data.error, "missing"));
    return;
  }
  const img = element("img");
  img.alt = "frames of the clip";
  const clip = state.clip;
  img.addEventListener("load", () => { if (clip.count) drawStrip(img, clip); });
  img.src = URL.createObjectURL(await response.blob());
  player.replaceChildren(overlaid(img, clip));
}

function renderClip(clip) {
  renderPlayer(clip);
  $("filename").textContent = clip.filename;
  const meta = $("metadata");
  meta.replaceChildren();
  const fields = { site: clip.site, time: clip.time, time_source: clip.time_source, video_id: clip.video_id,
                   ...clip.metadata };
  delete fields.filename; delete fields.captured_at;
  for (const [key, value] of Object.entries(fields)) {
    if (value === null || value === undefined) continue;
    meta.appendChild(element("dt", key));
    meta.appendChild(element("dd", typeof value === "number" && !Number.isInteger(value) ? value.toFixed(3) : String(value)));
  }
  renderLabels(clip);
  renderCount(clip);
}

function renderCount(clip) {
  const box = $("count");
  box.replaceChildren();
  const count = clip.count;
  if (!count) {
    box.appendChild(element("span", "not counted (run jungle count)", "detail"));
    return;
  }
  box.appendChild(element("span", `${count.count === null ? "–" : count.count} animal${count.count === 1 ? "" : "s"}`,
                          count.human !== null ? "human" : ""));
  const parts = [];
  if (count.human !== null) parts.push(`counted by a person; machine: ${count.machine === null ? "–" : count.machine}`);
  else if (count.status === "skipped") parts.push("machine: nothing seen on the frames looked at");
  else parts.push(`machine: MaxN ${count.machine === null ? "–" : count.machine}`);
  if (count.tracks !== null) parts.push(`${count.tracks} track${count.tracks === 1 ? "" : "s"}`);
  const classes = Object.entries(count.classes || {}).map(([name, n]) => `${name} ${n}`);
  if (classes.length) parts.push(classes.join(", "));
  box.appendChild(element("div", parts.join(" · "), "detail"));
  $("count-input").value = count.count === null ? "" : String(count.count);
}

async function writeCount(body) {
  const result = await api("POST", "/api/count", Object.assign({ video_id: state.clip.video_id }, body));
  state.clip = result.clip;
  renderCount(result.clip);
  const count = result.clip.count;
  say(`saved count of ${result.clip.filename}: ${count && count.human !== null ? count.human : "the machine's"}`);
}

function setCount() {
  const text = $("count-input").value.trim();
  if (!/^[0-9]+$/.test(text)) { say("a count is a whole number of animals", true); return Promise.resolve(); }
  $("count-input").blur();
  return writeCount({ count: Number(text) });
}

async function undoCount() {
  const result = await api("POST", "/api/count/undo");
  const at = state.queue.findIndex((c) => c.video_id === result.video_id);
  if (at >= 0) await show(at);
  say(`undone: the count of ${result.clip ? result.clip.filename : result.video_id}`);
}

function renderLabels(clip) {
  const top = $("top");
  top.replaceChildren();
  clip.top.forEach(([name, p], k) => {
    const item = element("li", `${k + 1}  ${name}  ${p.toFixed(3)}`);
    if (clip.labels && clip.labels.includes(name)) item.className = "on";
    item.addEventListener("click", () => enqueue(() => setLabels([name], true)));
    top.appendChild(item);
  });
  const labels = $("labels");
  labels.replaceChildren();
  if (clip.labels) {
    clip.labels.forEach((name) => labels.appendChild(element("span", name, "chip")));
    if (!clip.labels.length) labels.appendChild(element("span", "labelled: no class", "none"));
    labels.appendChild(element("div", `source: ${clip.label_source}`, "none"));
  } else {
    labels.appendChild(element("span", "not labelled", "none"));
  }
}

async function write(body, advance) {
  const result = await api("POST", "/api/labels", body);
  const clip = result.clip;
  const entry = state.queue.find((c) => c.video_id === clip.video_id);
  if (entry) Object.assign(entry, { labels: clip.labels, label_source: clip.label_source });
  say(`saved ${clip.filename}: ${clip.labels ? clip.labels.join(", ") : "not labelled"}`);
  if (advance && state.pos < state.queue.length - 1) {
    await show(state.pos + 1);
    say(`saved ${clip.filename}: ${clip.labels ? clip.labels.join(", ") : "not labelled"}`);
  } else {
    state.clip = clip;
    renderQueue();
    renderLabels(clip);
  }
}

function setLabels(classes, advance) {
  return write({ video_id: state.clip.video_id, classes }, advance);
}

function toggle(name) {
  const current = new Set(state.clip.labels || []);
  if (current.has(name)) current.delete(name); else current.add(name);
  if (!current.size) return write({ video_id: state.clip.video_id, clear: true }, false);
  return setLabels(state.classes.filter((c) => current.has(c)), false);
}

async function undo() {
  const result = await api("POST", "/api/undo");
  const at = state.queue.findIndex((c) => c.video_id === result.video_id);
  if (at >= 0) {
    await show(at);
  }
  const name = result.clip ? result.clip.filename : result.video_id;
  say(`undone: ${name} is ${result.clip && result.clip.labels ? result.clip.labels.join(", ") : "not labelled"} again`);
}

function fmt(value) {
  return value === null || value === undefined ? "–" : value.toFixed(4);
}

function modelLabel(model) {
  return model.model_id + (model.recipe ? ` (${model.recipe})` : "");
}

function renderInfo(info) {
  $("model").textContent = `${info.origin} · ${info.clips} clips, ${info.labelled} labelled`;
  const choice = $("model-choice");
  choice.replaceChildren();
  for (const model of info.models) {
    const option = new Option(modelLabel(model) + (model.current ? " · current" : ""), model.model_id);
    option.selected = model.model_id === info.model_id;
    choice.appendChild(option);
  }
}

async function useModel(modelId) {
  say(`switching to ${modelId}…`);
  const info = await api("POST", "/api/model", { model: modelId });
  renderInfo(info);
  await loadQueue();
  say(`now ranking with ${modelLabel(info.models.find((m) => m.model_id === info.model_id) || { model_id: info.model_id })}; it is the current model`);
}

async function retrain() {
  say("retraining…");
  $("retrain").disabled = true;
  try {
    const result = await api("POST", "/api/retrain");
    const box = $("retrain-result");
    box.replaceChildren();
    box.appendChild(element("p", `out-of-fold log loss on the ${result.clips} clips labelled now (lower is better) · ` +
      `labelled ${result.before.labelled} → ${result.after.labelled} · ${result.seconds} s`, "summary"));
    const models = element("table");
    models.id = "retrain-models";
    const head = element("tr");
    ["model", "log loss", ""].forEach((h) => head.appendChild(element("th", h)));
    models.appendChild(head);
    for (const model of result.models) {
      const row = element("tr");
      row.dataset.modelId = model.model_id;
      row.appendChild(element("td", modelLabel(model)));
      row.appendChild(element("td", fmt(model.log_loss)));
      const cell = element("td");
      if (model.current) {
        cell.appendChild(element("span", "current", "on"));
      } else {
        const use = element("button", "use this model");
        use.type = "button";
        use.addEventListener("click", () => enqueue(() => useModel(model.model_id)));
        cell.appendChild(use);
      }
      row.appendChild(cell);
      models.appendChild(row);
    }
    box.appendChild(models);
    const table = element("table");
    const counts = element("tr");
    ["class", "before review", "now"].forEach((h) => counts.appendChild(element("th", h)));
    table.appendChild(counts);
    for (const name of state.classes) {
      const before = result.before.counts[name] || 0, after = result.after.counts[name] || 0;
      if (before === after) continue;
      const row = element("tr");
      [name, before, after].forEach((v) => row.appendChild(element("td", String(v))));
      table.appendChild(row);
    }
    if (table.children.length > 1) box.appendChild(table);
    renderInfo(await api("GET", "/api/info"));
    await loadQueue();
    const kept = result.current === result.refit_id ? "the re-fit is better and now current" : "the re-fit is no better: kept " + result.current;
    say(`retrained in ${result.seconds} s; ${kept}; queue re-ranked`);
  } finally {
    $("retrain").disabled = false;
  }
}

function suggestions() {
  const text = $("typeahead").value.trim().toLowerCase();
  if (!text) return [];
  const starts = state.classes.filter((c) => c.toLowerCase().startsWith(text));
  return starts.concat(state.classes.filter((c) => !starts.includes(c) && c.toLowerCase().includes(text)));
}

function renderSuggestions() {
  const list = $("suggestions");
  list.replaceChildren();
  suggestions().forEach((name, k) => list.appendChild(element("li", name, k === state.suggestion ? "active" : "")));
}

function onTypeahead(event) {
  const found = suggestions();
  if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    const step = event.key === "ArrowDown" ? 1 : -1;
    state.suggestion = Math.max(0, Math.min(found.length - 1, state.suggestion + step));
    renderSuggestions();
    event.preventDefault();
  } else if (event.key === "Enter") {
    event.preventDefault();
    const name = found[state.suggestion];
    if (!name) { say(`no class matches "${$("typeahead").value}"`, true); return; }
    $("typeahead").value = ""; state.suggestion = 0; renderSuggestions(); $("typeahead").blur();
    enqueue(() => (event.shiftKey ? toggle(name) : setLabels([name], true)));
  } else if (event.key === "Escape") {
    $("typeahead").value = ""; renderSuggestions(); $("typeahead").blur();
  }
}

function onKey(event) {
  if (event.target.matches("input, select, textarea") || event.ctrlKey && event.key !== "z" || event.metaKey || event.altKey) return;
  if (!state.clip && !["R"].includes(event.key)) return;
  const digit = /^(Digit|Numpad)([1-9])$/.exec(event.code);
  if (digit) {
    const pick = state.clip.top[Number(digit[2]) - 1];
    if (pick) enqueue(() => (event.shiftKey ? toggle(pick[0]) : setLabels([pick[0]], true)));
  } else if (event.key === "b") {
    if (state.classes.includes("blank")) enqueue(() => setLabels(["blank"], true));
    else say('this workspace has no class "blank"', true);
  } else if (event.key === "/") {
    $("typeahead").focus();
  } else if (event.key === "x") {
    enqueue(() => write({ video_id: state.clip.video_id, clear: true }, false));
  } else if (["j", "n", "ArrowRight", "ArrowDown"].includes(event.key)) {
    enqueue(() => show(state.pos + 1));
  } else if (["k", "p", "ArrowLeft", "ArrowUp"].includes(event.key)) {
    enqueue(() => show(state.pos - 1));
  } else if (event.key === "u" || (event.ctrlKey && event.key === "z")) {
    enqueue(undo);
  } else if (event.key === "U") {
    enqueue(undoCount);
  } else if (event.key === "c") {
    $("count-input").focus();
    $("count-input").select();
  } else if (event.key === "R") {
    enqueue(retrain);
  } else {
    return;
  }
  event.preventDefault();
}

async function start() {
  const info = await api("GET", "/api/info");
  state.classes = info.classes;
  renderInfo(info);
  $("model-choice").addEventListener("change", (event) => enqueue(() => useModel(event.target.value)));
  for (const name of info.classes) $("class").appendChild(new Option(name, name));
  for (const name of info.sites) $("site").appendChild(new Option(name, name));
  for (const name of ["order", "class", "site", "labelled", "min_p", "max_p"]) {
    $(name).addEventListener("change", () => guarded(loadQueue));
  }
  $("retrain").addEventListener("click", () => enqueue(retrain));
  $("typeahead").addEventListener("input", () => { state.suggestion = 0; renderSuggestions(); });
  $("typeahead").addEventListener("keydown", onTypeahead);
  $("count-input").addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); enqueue(setCount); }
    else if (event.key === "Escape") $("count-input").blur();
  });
  $("count-set").addEventListener("click", () => enqueue(setCount));
  $("count-clear").addEventListener("click", () => enqueue(() => writeCount({ clear: true })));
  document.addEventListener("keydown", onKey);
  await loadQueue();
}

guarded(start);
