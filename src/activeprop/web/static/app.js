// The activeprop labeler page: plain JavaScript over the JSON API (/api, see /docs).
"use strict";

const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948",
  "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac", "#1f77b4", "#aec7e8", "#ffbb78", "#98df8a"];
const BATCH = 5;
const token = new URLSearchParams(location.search).get("token");
const annotator = localStorage.getItem("activeprop-annotator") ||
  (() => { const id = "browser-" + Math.random().toString(36).slice(2, 8);
    localStorage.setItem("activeprop-annotator", id); return id; })();

const ui = { classes: [], queue: [], focus: 0, skipped: new Set(), busy: false };
const $ = (id) => document.getElementById(id);

async function api(path, options = {}) {
  const headers = { "Content-Type": "application/json", ...(options.headers || {}) };
  if (token) headers.Authorization = "Bearer " + token;
  const response = await fetch(path, { ...options, headers });
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (!response.ok) throw new Error(body?.detail ? JSON.stringify(body.detail) : response.statusText);
  return body;
}

function imageUrl(id) {
  return `api/items/${id}/image` + (token ? `?token=${encodeURIComponent(token)}` : "");
}

function color(name) { return PALETTE[ui.classes.indexOf(name) % PALETTE.length]; }

function toast(text, error = false) {
  const element = $("toast");
  element.textContent = text;
  element.className = "toast" + (error ? " error" : "");
}

// ---------------------------------------------------------------- state and header
async function loadState() {
  const state = await api("api/state");
  if (!ui.classes.length) setupClasses(state.class_names);
  $("labeled").textContent = `${state.n_labeled.toLocaleString()} / ${state.pool_size.toLocaleString()}`;
  $("version").textContent = "v" + state.model_version;
  const last = state.curve[state.curve.length - 1];
  $("accuracy").textContent = last ? (100 * last.accuracy).toFixed(1) + "%" : "–";
  $("accuracy-source").textContent = last ? `(${last.source})` : "(after 10 labels)";
  $("estimate").textContent = state.estimated_accuracy === null ? "–"
    : (100 * state.estimated_accuracy).toFixed(1) + "%";
  // The model cannot predict a class nobody labeled yet: its confidence is optimistic then.
  const missing = state.class_names.length - state.classes_labeled;
  $("estimate-note").textContent = state.n_labeled && missing > 0
    ? `(optimistic: ${missing} of ${state.class_names.length} classes ${missing === 1 ? "has" : "have"} no label yet)`
    : "(no ground truth)";
  $("changed").textContent = state.changed_last === null ? "–" : (100 * state.changed_last).toFixed(1) + "% of items";
  drawCurve(state.curve);
  showSettings(state.settings);
}

// ---------------------------------------------------------------- model settings
const MODEL_NAMES = { poisson: "Poisson learning", spreading: "label spreading",
  propagation: "label propagation" };

function showSettings(settings) {
  const graph = settings.kernel === "knn" ? `${settings.n_neighbors}-NN graph` : `${settings.kernel} graph`;
  $("settings").textContent = `Model: ${MODEL_NAMES[settings.model] || settings.model} on a ${graph}` +
    ` · asks by ${settings.strategy}` + (settings.batch_mode === "diverse" ? ", diverse batches" : "");
  $("priors-row").hidden = settings.model !== "poisson";
  if (document.activeElement?.closest("#priors-row")) return;  // the user is editing it
  const priors = settings.class_priors;
  $("priors").value = priors === null ? "" : priors === "uniform" ? "uniform" : "custom";
  $("priors-shares").value = priors && priors !== "uniform" ? priors : "";
  showSharesField();
}

// The shares field is for the "shares…" choice only.
function showSharesField() { $("priors-shares").hidden = $("priors").value !== "custom"; }

$("priors").onchange = showSharesField;
$("priors-apply").onclick = async () => {
  const choice = $("priors").value;
  const value = choice === "custom" ? $("priors-shares").value.trim() : choice;
  try {
    await api("api/settings/class-priors", { method: "PUT",
      body: JSON.stringify({ class_priors: value || null }) });
    $("priors-apply").blur();
    await refresh();  // the message comes with the refit predictions on the page
    toast(value ? `Class sizes declared (${value === "uniform" ? "balanced" : value}); predictions refit`
      : "Class sizes no longer declared; predictions refit");
  } catch (error) { toast("Not changed: " + error.message, true); }
};

function setupClasses(names) {
  ui.classes = names;
  const buttons = names.map((name, index) =>
    `<button data-class="${name}" title="${index < 10 ? "key " + keyFor(index) : ""}">` +
    `<span class="swatch" style="background:${color(name)}"></span>${name}</button>`).join("");
  $("classes").innerHTML = buttons;
  $("classes").onclick = (event) => {
    const button = event.target.closest("button");
    if (button) labelFocused(button.dataset.class);
  };
  $("filter-class").innerHTML = '<option value="">all</option>' +
    names.map((n) => `<option>${n}</option>`).join("");
  $("legend").innerHTML = names.map((n) => `<span><i style="background:${color(n)}"></i>${n}</span>`).join("") +
    '<span><i style="outline:2px solid #1f2933;outline-offset:-2px;background:#fff"></i>human label</span>';
}

// Number keys: with names "0".."9" the key is the name; otherwise 1..9 then 0 in order.
function keyFor(index) { return ui.classes.every((n) => /^\d$/.test(n)) ? ui.classes[index] : String((index + 1) % 10); }
function classForKey(key) {
  if (ui.classes.includes(key) && ui.classes.every((n) => /^\d$/.test(n))) return key;
  const index = key === "0" ? 9 : Number(key) - 1;
  return index >= 0 && index < ui.classes.length ? ui.classes[index] : null;
}

// ---------------------------------------------------------------- the queue
async function loadQueue() {
  const skip = [...ui.skipped].map((id) => `&skip=${id}`).join("");
  const data = await api(`api/queue?n=${BATCH}&client=${encodeURIComponent(annotator)}${skip}`);
  ui.queue = data.items;
  ui.focus = Math.min(ui.focus, Math.max(0, ui.queue.length - 1));
  renderQueue();
}

// Each queued item's <img>, kept once loaded: the queue is drawn again on every arrow key
// and after every refit, and a new element would fetch the picture again and show a blank
// card meanwhile.
const pictures = new Map();

function picture(id) {
  if (!pictures.has(id)) {
    if (pictures.size > 200) pictures.clear();
    const image = new Image();
    image.src = imageUrl(id);
    image.alt = `item ${id}`;
    image.onerror = () => pictures.delete(id);  // the next drawing asks again
    pictures.set(id, image);
  }
  return pictures.get(id);
}

function renderQueue() {
  $("queue-note").textContent = ui.queue.length ? "most informative first" : "— nothing left to label";
  $("queue").innerHTML = ui.queue.map((item, index) => `
    <div class="card${index === ui.focus ? " focused" : ""}" data-index="${index}" data-id="${item.id}">
      <div class="guess">${item.prediction === null ? "no guess yet" :
        `guess <strong>${item.prediction}</strong> · ${(100 * item.confidence).toFixed(0)}%`}</div>
      <div class="conf"><div style="width:${(100 * item.confidence).toFixed(0)}%"></div></div>
      <div class="muted">#${item.id}</div>
    </div>`).join("");
  $("queue").querySelectorAll(".card").forEach((card, index) => card.prepend(picture(ui.queue[index].id)));
}

async function labelItem(itemId, label) {
  if (ui.busy) return;
  ui.busy = true;
  try {
    const saved = await api("api/labels", { method: "POST",
      body: JSON.stringify({ item_id: itemId, label, annotator }) });
    toast(`Saved: #${saved.item_id} is "${saved.label}"` +
      (saved.second_opinion ? " (second opinion kept)" : "") + ` — model v${saved.model_version}`);
    await refresh();
  } catch (error) { toast("Not saved: " + error.message, true); }
  finally { ui.busy = false; }
}

function labelFocused(label) {
  const item = ui.queue[ui.focus];
  if (item && label !== null) labelItem(item.id, label);
}

async function undo() {
  try {
    const done = await api("api/undo", { method: "POST", body: JSON.stringify({ annotator }) });
    toast(`Undone: #${done.item_id}` + (done.label ? ` is "${done.label}" again` : " is unlabeled again"));
    ui.skipped.delete(done.item_id);
    await refresh();
  } catch (error) { toast("Nothing to undo", true); }
}

function skip() {
  const item = ui.queue[ui.focus];
  if (!item) return;
  ui.skipped.add(item.id);
  toast(`Skipped #${item.id}`);
  loadQueue();
}

// The state first: it carries the class names that the queue and overview are drawn with.
async function refresh() { await loadState(); await Promise.all([loadQueue(), loadOverview()]); }

document.addEventListener("keydown", (event) => {
  if ($("item-dialog").open || event.target.tagName === "INPUT" || event.target.tagName === "SELECT") return;
  if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") { event.preventDefault(); undo(); return; }
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (/^\d$/.test(event.key)) labelFocused(classForKey(event.key));
  else if (event.key === "ArrowRight") { ui.focus = Math.min(ui.focus + 1, ui.queue.length - 1); renderQueue(); }
  else if (event.key === "ArrowLeft") { ui.focus = Math.max(ui.focus - 1, 0); renderQueue(); }
  else if (event.key === "s") skip();
  else if (event.key === "u") undo();
});
$("queue").addEventListener("click", (event) => {
  const card = event.target.closest(".card");
  if (card) { ui.focus = Number(card.dataset.index); renderQueue(); }
});
$("undo").onclick = undo;

// ---------------------------------------------------------------- learning curve
function drawCurve(points) {
  const svg = $("curve");
  const [w, h, left, bottom, top, right] = [420, 200, 40, 28, 10, 10];
  if (!points.length) {
    svg.innerHTML = `<text x="${w / 2}" y="${h / 2}" text-anchor="middle">the curve starts after the first labels</text>`;
    return;
  }
  const xs = points.map((p) => p.n_labeled), ys = points.map((p) => p.accuracy);
  const xMin = Math.min(...xs), xMax = Math.max(...xs, xMin + 1);
  const yMin = Math.max(0, Math.floor(Math.min(...ys) * 10) / 10), yMax = 1;
  const x = (v) => left + (v - xMin) / (xMax - xMin) * (w - left - right);
  const y = (v) => h - bottom - (v - yMin) / (yMax - yMin) * (h - top - bottom);
  let grid = "";
  for (let v = yMin; v <= yMax + 1e-9; v += 0.1) {
    grid += `<line class="grid" x1="${left}" x2="${w - right}" y1="${y(v)}" y2="${y(v)}"/>` +
      `<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end">${Math.round(v * 100)}%</text>`;
  }
  const path = points.map((p, i) => `${i ? "L" : "M"}${x(p.n_labeled).toFixed(1)},${y(p.accuracy).toFixed(1)}`).join("");
  const last = points[points.length - 1];
  svg.innerHTML = grid +
    `<line class="axis" x1="${left}" x2="${w - right}" y1="${h - bottom}" y2="${h - bottom}"/>` +
    `<text x="${left}" y="${h - 8}">${xMin}</text><text x="${w - right}" y="${h - 8}" text-anchor="end">${xMax} labels</text>` +
    `<path class="line" d="${path}"/><circle cx="${x(last.n_labeled)}" cy="${y(last.accuracy)}" r="3.5"/>`;
}

// ---------------------------------------------------------------- pool overview
async function loadOverview() {
  const params = new URLSearchParams({ min_confidence: $("filter-min").value,
    max_confidence: $("filter-max").value, limit: "3000" });
  if ($("filter-class").value) params.set("label", $("filter-class").value);
  const data = await api("api/items?" + params);
  $("overview-note").textContent = `${data.total.toLocaleString()} items` +
    (data.total > data.items.length ? ` (first ${data.items.length} shown)` : "");
  $("overview").innerHTML = data.items.map((item) =>
    `<div class="${item.source === "human" ? "human" : ""}" data-id="${item.id}" ` +
    `title="#${item.id}: ${item.label ?? "?"} (${item.source}, ${(100 * item.confidence).toFixed(0)}%)" ` +
    `style="background:${item.label === null ? "#e4e7eb" : color(item.label)};opacity:${(0.25 + 0.75 * item.confidence).toFixed(2)}"></div>`).join("");
}
for (const id of ["filter-class", "filter-min", "filter-max"]) {
  $(id).addEventListener("input", () => {
    $("filter-min-value").textContent = Number($("filter-min").value).toFixed(2);
    $("filter-max-value").textContent = Number($("filter-max").value).toFixed(2);
    loadOverview();
  });
}
$("overview").addEventListener("click", (event) => {
  const cell = event.target.closest("[data-id]");
  if (cell) openItem(Number(cell.dataset.id));
});

async function openItem(id) {
  const item = await api(`api/items/${id}`);
  $("item-image").src = imageUrl(id);
  $("item-title").textContent = `Item #${id}`;
  $("item-facts").textContent = item.label !== null
    ? `Human label: ${item.label}. Model: ${item.prediction} (${(100 * item.confidence).toFixed(0)}%).`
    : `Propagated label: ${item.prediction ?? "none yet"} (${(100 * item.confidence).toFixed(0)}% confident).`;
  $("item-classes").innerHTML = ui.classes.map((name) =>
    `<button data-class="${name}"><span class="swatch" style="background:${color(name)}"></span>${name}</button>`).join("");
  $("item-classes").onclick = async (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    $("item-dialog").close();
    await labelItem(id, button.dataset.class);
  };
  $("item-history").innerHTML = item.events.length ? item.events.map((e) =>
    `<li>${new Date(e.time * 1000).toLocaleString()} — ${e.annotator}: ` +
    (e.kind === "undo" ? `undid event ${e.undoes}` : `labeled "${e.label}"`) + "</li>").join("")
    : "<li>no human label yet</li>";
  $("item-dialog").showModal();
}

// ---------------------------------------------------------------- review
$("review-button").onclick = async () => {
  const data = await api("api/review");
  $("review").innerHTML = data.labels.length ? data.labels.map((entry) =>
    `<li data-id="${entry.item_id}"><img src="${imageUrl(entry.item_id)}" alt=""> #${entry.item_id}: ` +
    `labeled <strong>${entry.label}</strong>, the graph says <strong>${entry.suggested}</strong> ` +
    `(support ${(100 * entry.support).toFixed(0)}%${entry.annotator ? ", by " + entry.annotator : ""})</li>`).join("")
    : "<li>No human label is contradicted by the others.</li>";
};
$("review").addEventListener("click", (event) => {
  const row = event.target.closest("[data-id]");
  if (row) openItem(Number(row.dataset.id));
});

api("api/state").then((state) => { $("dataset").textContent = state.dataset || ""; });
refresh().catch((error) => toast("Cannot reach the server: " + error.message, true));
