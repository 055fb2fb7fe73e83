// The activeprop labeler page: plain JavaScript over the JSON API (/api, see /docs).
// Every string from the server (class, annotator and file names, texts) is inserted as text
// through the DOM helpers below, never parsed as HTML; the server's Content-Security-Policy
// allows no inline script. A token, when the server wants one, travels in an HttpOnly
// cookie that opening the printed URL set: this script never sees it.
"use strict";

const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948",
  "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac", "#1f77b4", "#aec7e8", "#ffbb78", "#98df8a"];
const BATCH = 5;
const SVG = "http://www.w3.org/2000/svg";
const annotator = localStorage.getItem("activeprop-annotator") ||
  (() => { const id = "browser-" + Math.random().toString(36).slice(2, 8);
    localStorage.setItem("activeprop-annotator", id); return id; })();

const ui = { classes: [], hasImages: false, queue: [], focus: 0, skipped: new Set(), saving: Promise.resolve(), pending: 0 };
const $ = (id) => document.getElementById(id);

// An element with attributes, properties and children (strings become text nodes).
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "style") Object.assign(node.style, value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("aria-") || key === "role") node.setAttribute(key, value);
    else node[key] = value;
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

function svg(tag, attributes = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text !== null) node.textContent = text;
  return node;
}

async function api(path, options = {}) {
  const headers = { "Content-Type": "application/json", ...(options.headers || {}) };
  const response = await fetch(path, { ...options, headers, credentials: "same-origin" });
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (!response.ok) throw new Error(body?.detail ? JSON.stringify(body.detail) : response.statusText);
  return body;
}

const imageUrl = (id) => `api/items/${id}/image`;
const percent = (value) => (100 * value).toFixed(0) + "%";
const TEXT_SHOWN = 320;  // characters of a text on a card; the dialog shows it whole
const folded = (text) => text.length > TEXT_SHOWN ? text.slice(0, TEXT_SHOWN) + "…" : text;
const FIELDS_SHOWN = 8;  // a table row's first values on a card; the dialog shows them all

// A table cell's value; a missing one says so (muted), not "null".
function fieldValue(value) {
  return value === null ? el("td", { className: "muted" }, "missing") : el("td", {}, String(value));
}

// A table row's values under its columns' names (the first ``shown`` of them, then how
// many more). String(value) is the shortest form that reads back as the same number.
function fieldTable(fields, shown = fields.length) {
  const rows = fields.slice(0, shown).map((field) =>
    el("tr", {}, el("th", { scope: "row" }, field.name), fieldValue(field.value)));
  if (fields.length > shown) {
    rows.push(el("tr", {}, el("td", { colSpan: 2, className: "muted" }, `+${fields.length - shown} more`)));
  }
  return el("table", { className: "fields" }, el("tbody", {}, ...rows));
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
  ui.hasImages = state.has_images;
  document.body.classList.toggle("photos", !state.pixel_art);
  if (state.class_names.join("\n") !== ui.classes.join("\n")) setupClasses(state.class_names);
  $("labeled").textContent = `${state.n_labeled.toLocaleString()} / ${state.pool_size.toLocaleString()}`;
  $("version").textContent = "v" + state.model_version;
  const last = state.curve[state.curve.length - 1];
  $("accuracy").textContent = last ? (100 * last.accuracy).toFixed(1) + "%" : "–";
  // measured once the model guesses (two classes labeled), cross-validated from 10 labels
  $("accuracy-source").textContent = last ? `(${last.source})`
    : state.has_ground_truth ? "(once two classes have labels)" : "(after 10 labels, two classes)";
  $("estimate").textContent = state.estimated_accuracy === null ? "–"
    : (100 * state.estimated_accuracy).toFixed(1) + "%";
  // The model cannot predict a class nobody labeled yet: its confidence is optimistic then.
  const missing = state.class_names.length - state.classes_labeled;
  $("estimate-note").textContent = state.n_labeled && missing > 0
    ? `(optimistic: ${missing} of ${state.class_names.length} classes ${missing === 1 ? "has" : "have"} no label yet)`
    : "(no ground truth)";
  $("changed").textContent = state.changed_last === null ? "–" : (100 * state.changed_last).toFixed(1) + "% of items";
  drawCurve(state.curve);
  showSettings(state.settings, state.edge_weights);
}

// ---------------------------------------------------------------- model settings
const MODEL_NAMES = { poisson: "Poisson learning", spreading: "label spreading",
  propagation: "label propagation" };

const EDGE_NAMES = { local: "locally weighted edges", rbf: "rbf-weighted edges" };

function showSettings(settings, edgeWeights) {
  const edges = EDGE_NAMES[edgeWeights] ? ` with ${EDGE_NAMES[edgeWeights]}` : "";
  const graph = settings.kernel === "knn" ? `${settings.n_neighbors}-NN graph${edges}`
    : `${settings.kernel} graph`;
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

function swatch(name) { return el("span", { className: "swatch", style: { background: color(name) } }); }

function classButtons(onPick) {
  return ui.classes.map((name, index) => el("button", {
    type: "button", title: index < 10 ? "key " + keyFor(index) : "",
    onclick: () => onPick(name) }, swatch(name), name));
}

function setupClasses(names) {
  ui.classes = names;
  $("classes").replaceChildren(...classButtons((name) => labelFocused(name)));
  $("filter-class").replaceChildren(el("option", { value: "" }, "all"),
    ...names.map((name) => el("option", { value: name }, name)));
  $("legend").replaceChildren(
    ...names.map((name) => el("span", {}, el("i", { style: { background: color(name) } }), name)),
    el("span", {}, el("i", { className: "human-mark" }), "human label"));
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
  const data = await api("api/queue", { method: "POST",
    body: JSON.stringify({ n: BATCH, client: annotator, skip: [...ui.skipped] }) });
  if (ui.pending) return;  // labels still being saved: their refresh draws the queue
  ui.queue = data.items;
  ui.focus = Math.min(ui.focus, Math.max(0, ui.queue.length - 1));
  renderQueue();
}

// Each queued item's <img>, kept once loaded: the queue is drawn again on every arrow key
// and after every refit, and a new element would fetch the picture again and show a blank
// card meanwhile.
const pictures = new Map();

function picture(id) {
  if (!ui.hasImages) return null;  // a table of features: nothing to draw
  if (!pictures.has(id)) {
    if (pictures.size > 200) pictures.clear();
    const image = new Image();
    image.src = imageUrl(id);
    image.alt = "";  // the card's label says what it is
    image.onerror = () => pictures.delete(id);  // the next drawing asks again
    pictures.set(id, image);
  }
  return pictures.get(id);
}

function renderQueue() {
  $("queue-note").textContent = ui.queue.length ? "most informative first" : "— nothing left to label";
  const hadFocus = Boolean(document.activeElement?.closest("#queue"));
  $("queue").replaceChildren(...ui.queue.map((item, index) => {
    const focused = index === ui.focus;
    const guess = item.prediction === null ? el("div", { className: "guess" }, "no guess yet")
      : el("div", { className: "guess" }, "guess ", el("strong", {}, item.prediction), " · " + percent(item.confidence));
    return el("div", { className: "card" + (focused ? " focused" : "") + (item.text || item.fields ? " text-card" : ""),
      role: "option", tabIndex: focused ? 0 : -1, "aria-selected": String(focused),
      dataset: { index: String(index), id: String(item.id) } },
      picture(item.id), item.text ? el("p", { className: "text" }, folded(item.text)) : null,
      item.fields ? fieldTable(item.fields, FIELDS_SHOWN) : null,
      item.path ? el("div", { className: "path", title: item.path }, item.path) : null, guess,
      el("div", { className: "conf" }, el("div", { style: { width: percent(item.confidence) } })),
      el("div", { className: "muted" }, "item #" + item.id));
  }));
  if (hadFocus) $("queue").querySelector(".card.focused")?.focus();
}

// Labels are saved one after another, in the order given. The item leaves the queue at
// once, so the next key labels the next card while earlier labels are still being saved:
// no key press is lost.
function labelItem(itemId, label) {
  ui.pending += 1;
  $("queue").setAttribute("aria-busy", "true");
  ui.queue = ui.queue.filter((item) => item.id !== itemId);
  ui.focus = Math.min(ui.focus, Math.max(0, ui.queue.length - 1));
  renderQueue();
  ui.saving = ui.saving.then(async () => {
    try {
      const saved = await api("api/labels", { method: "POST",
        body: JSON.stringify({ item_id: itemId, label, annotator }) });
      toast(`Saved: #${saved.item_id} is "${saved.label}"` +
        (saved.second_opinion ? " (second opinion kept)" : "") + ` — model v${saved.model_version}`);
    } catch (error) { toast("Not saved: " + error.message, true); }
    finally { ui.pending -= 1; }
    if (!ui.pending) await refresh();
  });
  return ui.saving;
}

function labelFocused(label) {
  const item = ui.queue[ui.focus];
  if (item && label !== null) labelItem(item.id, label);
}

async function undo() {
  await ui.saving;  // undo the label the person sees as saved, not one still in flight
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

function moveFocus(step) {
  ui.focus = Math.max(0, Math.min(ui.focus + step, ui.queue.length - 1));
  renderQueue();
}

// The state first: it carries the class names that the queue and overview are drawn with.
// The queue is aria-busy until its new items are drawn (a test, or a screen reader, waits).
async function refresh() {
  $("queue").setAttribute("aria-busy", "true");
  try {
    await loadState();
    await Promise.all([loadQueue(), loadOverview()]);
  } finally {
    if (!ui.pending) $("queue").setAttribute("aria-busy", "false");
  }
}

document.addEventListener("keydown", (event) => {
  const target = event.target;
  if ($("item-dialog").open || ["INPUT", "SELECT", "TEXTAREA"].includes(target.tagName)) return;
  if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") { event.preventDefault(); undo(); return; }
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (target.closest?.("#overview")) return;  // the overview's own keys (below)
  if (/^\d$/.test(event.key)) labelFocused(classForKey(event.key));
  else if (event.key === "ArrowRight") moveFocus(1);
  else if (event.key === "ArrowLeft") moveFocus(-1);
  else if (event.key === "s") skip();
  else if (event.key === "u") undo();
});
$("queue").addEventListener("click", (event) => {
  const card = event.target.closest(".card");
  if (card) { ui.focus = Number(card.dataset.index); renderQueue(); }
});
$("undo").onclick = undo;
$("add-class").onsubmit = async (event) => {
  event.preventDefault();
  const name = $("new-class").value.trim();
  if (!name) return;
  try {
    await api("api/classes", { method: "POST", body: JSON.stringify({ name }) });
    $("new-class").value = "";
    toast(`Class "${name}" added`);
    await refresh();
  } catch (error) { toast("Not added: " + error.message, true); }
};

// ---------------------------------------------------------------- learning curve
function drawCurve(points) {
  const chart = $("curve");
  const [w, h, left, bottom, top, right] = [420, 200, 40, 28, 10, 10];
  if (!points.length) {
    chart.replaceChildren(svg("text", { x: w / 2, y: h / 2, "text-anchor": "middle" },
      "the curve starts after the first labels"));
    return;
  }
  const xs = points.map((p) => p.n_labeled), ys = points.map((p) => p.accuracy);
  const xMin = Math.min(...xs), xMax = Math.max(...xs, xMin + 1);
  const yMin = Math.max(0, Math.floor(Math.min(...ys) * 10) / 10), yMax = 1;
  const x = (v) => left + (v - xMin) / (xMax - xMin) * (w - left - right);
  const y = (v) => h - bottom - (v - yMin) / (yMax - yMin) * (h - top - bottom);
  const parts = [];
  for (let v = yMin; v <= yMax + 1e-9; v += 0.1) {
    parts.push(svg("line", { class: "grid", x1: left, x2: w - right, y1: y(v), y2: y(v) }),
      svg("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end" }, `${Math.round(v * 100)}%`));
  }
  const path = points.map((p, i) => `${i ? "L" : "M"}${x(p.n_labeled).toFixed(1)},${y(p.accuracy).toFixed(1)}`).join("");
  const last = points[points.length - 1];
  parts.push(svg("line", { class: "axis", x1: left, x2: w - right, y1: h - bottom, y2: h - bottom }),
    svg("text", { x: left, y: h - 8 }, String(xMin)),
    svg("text", { x: w - right, y: h - 8, "text-anchor": "end" }, `${xMax} labels`),
    svg("path", { class: "line", d: path }),
    svg("circle", { cx: x(last.n_labeled), cy: y(last.accuracy), r: 3.5 }));
  chart.replaceChildren(...parts);
  chart.setAttribute("aria-label", `learning curve: ${percent(last.accuracy)} accuracy at ${last.n_labeled} labels (${last.source})`);
}

// ---------------------------------------------------------------- pool overview
// One button per item; only one is in the tab order (arrow keys move between them), so the
// grid is a single tab stop. The class shows as colour and as the class name's first
// character, so it does not rest on colour alone.
async function loadOverview() {
  const params = new URLSearchParams({ min_confidence: $("filter-min").value,
    max_confidence: $("filter-max").value, limit: "3000" });
  if ($("filter-class").value) params.set("label", $("filter-class").value);
  const data = await api("api/items?" + params);
  $("overview-note").textContent = `${data.total.toLocaleString()} items` +
    (data.total > data.items.length ? ` (first ${data.items.length} shown)` : "");
  $("overview").replaceChildren(...data.items.map((item, index) => {
    const name = item.label ?? "?";
    const description = `Item ${item.id}: ${name} (${item.source}, ${percent(item.confidence)})`;
    return el("button", { type: "button", className: "cell" + (item.source === "human" ? " human" : ""),
      tabIndex: index === 0 ? 0 : -1, title: description, "aria-label": description,
      dataset: { id: String(item.id) },
      style: { background: item.label === null ? "#e4e7eb" : color(item.label),
        opacity: (0.35 + 0.65 * item.confidence).toFixed(2) } }, name.slice(0, 1));
  }));
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
$("overview").addEventListener("keydown", (event) => {
  const cells = [...$("overview").children];
  const index = cells.indexOf(event.target);
  if (index < 0) return;
  const perRow = Math.max(1, Math.round($("overview").clientWidth / (cells[0].offsetWidth + 2)));
  const step = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: perRow, ArrowUp: -perRow }[event.key];
  if (step === undefined) return;
  event.preventDefault();
  const next = cells[Math.max(0, Math.min(index + step, cells.length - 1))];
  event.target.tabIndex = -1;
  next.tabIndex = 0;
  next.focus();
});

async function openItem(id) {
  const item = await api(`api/items/${id}`);
  $("item-image").hidden = !ui.hasImages;
  if (ui.hasImages) $("item-image").src = imageUrl(id);
  $("item-title").textContent = `Item #${id}`;
  $("item-path").textContent = item.path || "";
  $("item-text").textContent = item.text || "";
  $("item-text").hidden = !item.text;
  $("item-fields").replaceChildren(...(item.fields ? [fieldTable(item.fields)] : []));
  $("item-fields").hidden = !item.fields;  // (a scrollable region: a stop for the Tab key)
  $("item-facts").textContent = item.label !== null
    ? `Human label: ${item.label}. Model: ${item.prediction} (${percent(item.confidence)}).`
    : `Propagated label: ${item.prediction ?? "none yet"} (${percent(item.confidence)} confident).`;
  $("item-classes").replaceChildren(...classButtons(async (name) => {
    $("item-dialog").close();
    await labelItem(id, name);
  }));
  $("item-history").replaceChildren(...(item.events.length ? item.events.map((e) =>
    el("li", {}, `${new Date(e.time * 1000).toLocaleString()} — ${e.annotator}: ` +
      (e.kind === "undo" ? `undid event ${e.undoes}` : `labeled "${e.label}"`)))
    : [el("li", {}, "no human label yet")]));
  $("item-dialog").showModal();
}

// ---------------------------------------------------------------- review
$("review-button").onclick = async () => {
  const data = await api("api/review");
  $("review").replaceChildren(...(data.labels.length ? data.labels.map((entry) =>
    el("li", {}, el("button", { type: "button", className: "review-entry", dataset: { id: String(entry.item_id) } },
      ui.hasImages ? el("img", { src: imageUrl(entry.item_id), alt: "" }) : null,
      ` #${entry.item_id}: labeled `, el("strong", {}, entry.label),
      ", the graph says ", el("strong", {}, entry.suggested),
      ` (likely a slip: ${percent(entry.slip)}; the others give it ${percent(entry.support)}` +
        (entry.annotator ? "; by " + entry.annotator : "") + ")")))
    : [el("li", {}, "No label looks like a slip (a class needs 3 labels before its labels are checked).")]));
};
$("review").addEventListener("click", (event) => {
  const row = event.target.closest("[data-id]");
  if (row) openItem(Number(row.dataset.id));
});

api("api/state").then((state) => { $("dataset").textContent = state.dataset || ""; });
refresh().catch((error) => toast("Cannot reach the server: " + error.message, true));
