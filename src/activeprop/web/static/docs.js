// The API reference, drawn from /openapi.json without any asset from the network.
"use strict";

function el(tag, text = null, className = "") {
  const node = document.createElement(tag);
  if (text !== null) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function parameters(operation) {
  const names = (operation.parameters || []).map((p) => `${p.name} (${p.in})`);
  const body = operation.requestBody?.content?.["application/json"]?.schema?.$ref;
  if (body) names.push("JSON body: " + body.split("/").pop());
  return names.length ? names.join(", ") : "none";
}

fetch("openapi.json", { credentials: "same-origin" }).then((r) => r.json()).then((spec) => {
  const list = el("dl");
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, operation] of Object.entries(methods)) {
      list.append(el("dt", `${method.toUpperCase()} ${path}`, "endpoint"));
      const description = el("dd", operation.description || operation.summary || "");
      description.append(el("div", "parameters: " + parameters(operation), "muted"),
        el("div", "answers: " + Object.keys(operation.responses || {}).join(", "), "muted"));
      list.append(description);
    }
  }
  document.getElementById("endpoints").replaceChildren(
    el("p", `${spec.info.title}, version ${spec.info.version}. ${spec.info.description || ""}`), list);
}).catch((error) => {
  document.getElementById("endpoints").textContent = "Cannot read openapi.json: " + error.message;
});
