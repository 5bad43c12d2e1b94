// Small DOM helpers: elements from data, never from HTML strings (item data is untrusted).

/** `h("div", {class: "x", onclick: fn}, child, ...)`: an element; strings become text. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name in el && typeof value !== "string") el[name] = value;
    else el.setAttribute(name, value === true ? "" : value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** JSON for reading: indented, stable. */
export function pretty(value) {
  return JSON.stringify(value, null, 2);
}

/** A value for a table cell or a field row: strings as they are, the rest as JSON. */
export function show(value) {
  if (value === undefined) return "";
  if (typeof value === "string") return value;
  return JSON.stringify(value);
}

/** A `<pre>` of JSON. */
export function jsonBlock(value, cls = "json") {
  return h("pre", { class: cls }, pretty(value));
}

/** An item as rows of field and value; `id` first. */
export function fieldRows(item, fields = []) {
  const keys = [...new Set(["id", ...fields, ...Object.keys(item ?? {})])]
    .filter((k) => item && k in item && k !== "__motia");
  return h("dl", { class: "fields" }, keys.map((k) => [
    h("dt", {}, k),
    h("dd", { class: typeof item[k] === "string" ? "text" : "value", dataset: { field: k } },
      item[k] === null ? h("span", { class: "null" }, "null") : show(item[k])),
  ]));
}

/** The time of day, to the second. */
export function clock(date = new Date()) {
  return date.toLocaleTimeString([], { hour12: false });
}

/** A pill: `tag("POST", "method post")`. */
export function chip(text, cls = "") {
  return h("span", { class: `chip ${cls}`.trim() }, text);
}

/** The box every server error is shown in: the error, then each detail. */
export function errorBox(title, details = [], extra = null) {
  return h("div", { class: "error-box", role: "alert" },
    h("strong", {}, title),
    details.length ? h("ul", {}, details.map((d) => h("li", {}, String(d)))) : null,
    extra);
}
