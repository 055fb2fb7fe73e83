// The notebook labeler's front end (an anywidget module). The kernel holds the session;
// this draws the queue, the header and the curve from the synced traits, and sends
// {action: "label" | "skip" | "undo"} messages. Every string (class names, texts, paths,
// messages) is inserted as text, never parsed as HTML; pictures are PNG data URLs.

const SVG = "http://www.w3.org/2000/svg";
const percent = (value) => (100 * value).toFixed(0) + "%";
const TEXT_SHOWN = 320;
const FIELDS_SHOWN = 8;  // a table row's first values on a card

// A table row's first values under its columns' names, then how many more.
function fieldTable(fields) {
  const rows = fields.slice(0, FIELDS_SHOWN).map((field) => el("tr", {},
    el("th", { textContent: field.name }),
    el("td", { textContent: field.value === null ? "missing" : String(field.value) })));
  if (fields.length > FIELDS_SHOWN) {
    rows.push(el("tr", {}, el("td", { colSpan: 2, textContent: `+${fields.length - FIELDS_SHOWN} more` })));
  }
  return el("table", { className: "ap-fields" }, el("tbody", {}, ...rows));
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key.startsWith("aria-") || key.startsWith("data-") || key === "role") {
      node.setAttribute(key, value);
    } else node[key] = value;
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

function svg(tag, attributes = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  return node;
}

function render({ model, el: host }) {
  // Keys pressed while the kernel saves a label act on the cards still to label: a card
  // leaves the queue as soon as its label is sent (item -> the message's number), and
  // comes back only if the kernel, having acknowledged that message, queues it again.
  const sent = new Map();
  let sequence = 0, focus = 0;
  const root = el("div", { className: "ap-labeler", tabIndex: 0, role: "application",
    "aria-label": "activeprop labeler: number keys label the highlighted item, arrows " +
      "move, s skips, u undoes",
    // JupyterLab (Lumino) leaves keys pressed in here to the widget, not to the notebook
    "data-lm-suppress-shortcuts": "true" });
  const header = el("div", { className: "ap-header" });
  const cards = el("div", { className: "ap-cards", role: "listbox", "aria-label": "Next to label" });
  const buttons = el("div", { className: "ap-classes" });
  const newClass = el("input", { type: "text", maxLength: 100, placeholder: "new class",
    "aria-label": "New class" });
  const controls = el("div", { className: "ap-controls" },
    el("button", { type: "button", textContent: "Skip (s)", onclick: () => skip() }),
    el("button", { type: "button", textContent: "Undo (u)", onclick: () => undo() }),
    newClass, el("button", { type: "button", textContent: "Add class", onclick: () => {
      if (newClass.value.trim()) send({ action: "add_class", name: newClass.value.trim() });
      newClass.value = "";
    } }));
  const message = el("div", { className: "ap-message", role: "status", "aria-live": "polite" });
  const curve = el("div", { className: "ap-curve" });
  root.append(header, cards, buttons, controls, message, curve);
  host.append(root);

  const waiting = () => model.get("items").filter((item) => !sent.has(item.id));
  const keyOf = (index) => Object.keys(model.get("class_keys")).find((key) => model.get("class_keys")[key] === index);

  function send(content, item) {
    sequence += 1;
    if (item !== undefined) sent.set(item, sequence);
    model.send({ ...content, sequence });
  }

  function label(index) {
    const queue = waiting();
    const item = queue[Math.min(focus, queue.length - 1)];
    if (!item || index === undefined) return;
    send({ action: "label", item: item.id, label: index }, item.id);
    drawCards();
  }

  function skip() {
    const queue = waiting();
    const item = queue[Math.min(focus, queue.length - 1)];
    if (!item) return;
    send({ action: "skip", item: item.id }, item.id);
    drawCards();
  }

  function undo() { send({ action: "undo" }); }

  function drawHeader() {
    const status = model.get("status");
    const parts = [`Labeled ${status.n_labeled} / ${status.pool_size}`];
    if (status.accuracy !== null && status.accuracy !== undefined) {
      parts.push(`accuracy ${percent(status.accuracy)} (${status.accuracy_source})`);
    }
    if (status.estimated_accuracy !== null && status.estimated_accuracy !== undefined) {
      parts.push(`estimated ${percent(status.estimated_accuracy)}`);
    }
    parts.push(`model v${status.model_version}`);
    header.replaceChildren(el("strong", { textContent: "activeprop" }), " · " + parts.join(" · "));
  }

  function drawCards() {
    const queue = waiting();
    focus = Math.max(0, Math.min(focus, queue.length - 1));
    cards.replaceChildren(...queue.map((item, index) => {
      const guess = item.prediction === null ? "no guess yet"
        : `guess ${item.prediction} · ${percent(item.confidence)}`;
      const shown = item.picture ? el("img", { src: item.picture, alt: `item ${item.id}` })
        : item.text !== null ? el("p", { className: "ap-text",
          textContent: item.text.length > TEXT_SHOWN ? item.text.slice(0, TEXT_SHOWN) + "…" : item.text })
          : item.fields ? fieldTable(item.fields) : null;
      const card = el("div", { className: "ap-card" + (index === focus ? " ap-focused" : ""),
        role: "option", "aria-selected": String(index === focus), "data-id": String(item.id),
        onclick: () => { focus = index; drawCards(); root.focus(); } },
      shown, el("div", { className: "ap-guess", textContent: guess }),
      el("div", { className: "ap-id", textContent: `item #${item.id}` + (item.path ? ` · ${item.path}` : "") }));
      return card;
    }));
    if (!queue.length) cards.append(el("p", { textContent: "Nothing left to label." }));
  }

  function drawClasses() {
    buttons.replaceChildren(...model.get("classes").map((name, index) => {
      const key = keyOf(index);
      return el("button", { type: "button", className: "ap-class",
        textContent: key && key !== name ? `${name} (${key})` : name,
        onclick: () => { label(index); root.focus(); } });
    }));
  }

  function drawMessage() {
    message.textContent = model.get("message");
    message.className = "ap-message" + (model.get("failed") ? " ap-error" : "");
  }

  function drawCurve() {
    const points = model.get("curve_points");
    if (points.length < 1) { curve.replaceChildren(); return; }
    const width = 340, height = 130, pad = 34;
    const most = Math.max(...points.map((p) => p.n_labeled), 1);
    const x = (n) => pad + (width - 2 * pad) * n / most;
    const y = (a) => height - pad - (height - 2 * pad) * a;
    const chart = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
      "aria-label": "learning curve: accuracy against labels" });
    const label = (text, attributes) => { const node = svg("text", { class: "ap-tick", ...attributes }); node.textContent = text; return node; };
    chart.append(svg("line", { x1: pad, y1: height - pad, x2: width - pad, y2: height - pad, class: "ap-axis" }),
      svg("line", { x1: pad, y1: pad, x2: pad, y2: height - pad, class: "ap-axis" }),
      label("100%", { x: pad - 4, y: pad + 4, "text-anchor": "end" }),
      label("0", { x: pad - 4, y: height - pad + 4, "text-anchor": "end" }),
      label(`${most} labels`, { x: width - pad, y: height - 6, "text-anchor": "end" }),
      svg("polyline", { points: points.map((p) => `${x(p.n_labeled)},${y(p.accuracy)}`).join(" "),
        class: "ap-line" }));
    const last = points[points.length - 1];
    const caption = el("div", { className: "ap-caption",
      textContent: `accuracy ${percent(last.accuracy)} at ${last.n_labeled} labels` });
    curve.replaceChildren(chart, caption);
  }

  root.addEventListener("keydown", (event) => {
    if (event.target === newClass) { event.stopPropagation(); return; }  // typing a name
    if (event.target.closest("button") && event.key === "Enter") return;
    const keys = model.get("class_keys");
    let handled = true;
    if (event.key in keys) label(keys[event.key]);
    else if (event.key === "ArrowRight") { focus += 1; drawCards(); }
    else if (event.key === "ArrowLeft") { focus -= 1; drawCards(); }
    else if (event.key === "s") skip();
    else if (event.key === "u") undo();
    else handled = false;
    if (handled) { event.preventDefault(); event.stopPropagation(); }
  });

  model.on("change:items", () => {
    const acknowledged = model.get("acknowledged");
    for (const [item, number] of sent) if (number <= acknowledged) sent.delete(item);
    drawCards();
  });
  model.on("change:status", drawHeader);
  model.on("change:classes", drawClasses);
  model.on("change:class_keys", drawClasses);
  model.on("change:message", drawMessage);
  model.on("change:failed", drawMessage);
  model.on("change:curve_points", drawCurve);
  drawHeader(); drawCards(); drawClasses(); drawMessage(); drawCurve();
}

export default { render };
