// A form built from a JSON Schema (as /__motia/steps gives it), read back as a JSON value.

import { h } from "./dom.js";

const LONG_TEXT = /message|prompt|text|content|description|body|query/i;
const MAX_DEPTH = 4;

/** A field's value could not be read; `field` is the dotted path. */
export class FormError extends Error {
  constructor(field, message) {
    super(`${field}: ${message}`);
    this.field = field;
  }
}

/**
 * `buildForm(schema)` -> `{element, read(), write(value)}`. `read()` returns the value
 * (omitting optional fields left empty) or throws FormError; `write(value)` fills it.
 */
export function buildForm(schema, idPrefix = "f") {
  const root = schema ?? {};
  const control = node(root, root, "$", "", true, 0, idPrefix);
  return { element: control.element, read: () => control.read(), write: (v) => control.write(v) };
}

function resolve(schema, root, depth = 0) {
  const ref = schema?.$ref;
  if (typeof ref === "string" && ref.startsWith("#/$defs/") && depth < 8) {
    return resolve(root.$defs?.[ref.slice("#/$defs/".length)] ?? {}, root, depth + 1);
  }
  return schema ?? {};
}

/** `{inner, nullable}`: `X | None` is X that may be null. */
function unwrapNullable(schema, root) {
  const options = schema.anyOf ?? schema.oneOf;
  if (Array.isArray(options)) {
    const rest = options.filter((s) => resolve(s, root).type !== "null");
    if (rest.length === 1 && rest.length < options.length) {
      return { inner: { ...resolve(rest[0], root), default: schema.default }, nullable: true };
    }
  }
  if (Array.isArray(schema.type) && schema.type.includes("null")) {
    const types = schema.type.filter((t) => t !== "null");
    if (types.length === 1) return { inner: { ...schema, type: types[0] }, nullable: true };
  }
  return { inner: schema, nullable: false };
}

/** What to call a schema's type in a label: "integer", "string | null", "object". */
export function typeName(schema, root = schema) {
  const s = resolve(schema, root);
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(" | ");
  const options = s.anyOf ?? s.oneOf;
  if (Array.isArray(options)) return options.map((o) => typeName(o, root)).join(" | ");
  if (s.type === "array") return s.items && s.items !== true && s.items !== false ? `${typeName(s.items, root)}[]` : "array";
  if (Array.isArray(s.type)) return s.type.join(" | ");
  return s.type ?? s.title ?? "any";
}

function node(schema, root, path, name, required, depth, idPrefix) {
  const resolved = resolve(schema, root);
  const { inner, nullable } = unwrapNullable(resolved, root);
  const id = `${idPrefix}-${path.replace(/[^\w-]/g, "_")}`;
  if (inner.type === "object" && inner.properties && depth < MAX_DEPTH) {
    return objectControl(inner, root, path, name, required, nullable, depth, idPrefix);
  }
  const input = scalarInput(inner, name, id, required);
  const label = name && h("label", { for: id },
    h("span", { class: "name" }, name),
    required ? h("span", { class: "req", title: "required" }, "*") : null,
    h("span", { class: "type" }, typeName(resolved, root)));
  const hint = inner.description ?? resolved.description;
  const inline = input.element.matches?.("input[type=checkbox]");
  const element = h("div", { class: `form-field${inline ? " inline" : ""}` },
    inline ? [input.element, label] : [label, input.element],
    hint ? h("small", { class: "hint" }, hint) : null);
  return {
    element,
    read() {
      const value = input.read(path);
      if (value !== undefined) return value;
      if (nullable && required) return null; // left empty: say null, the field must be there
      if (required && name) throw new FormError(path, "required");
      return undefined;
    },
    write(value) {
      input.write(value);
    },
  };
}

function objectControl(schema, root, path, name, required, nullable, depth, idPrefix) {
  const children = Object.entries(schema.properties).map(([key, prop]) => [key,
    node(prop, root, `${path}.${key}`, key, (schema.required ?? []).includes(key), depth + 1, idPrefix)]);
  const body = children.map(([, c]) => c.element);
  const writeAll = (value) => {
    for (const [key, child] of children) child.write(value?.[key]);
  };
  if (!name) {
    return {
      element: h("div", { class: "form-object root" }, body.length ? body : h("p", { class: "muted" }, "No fields.")),
      read: () => Object.fromEntries(children.map(([k, c]) => [k, c.read()]).filter(([, v]) => v !== undefined)),
      write: writeAll,
    };
  }
  // An optional or nullable object is sent only when ticked: its own required fields
  // must not make the whole form fail while it is left out.
  const optional = !required || nullable;
  const include = optional ? h("input", { type: "checkbox", "aria-label": `send ${name}` }) : null;
  const inner = h("div", { class: "form-object-fields" }, body);
  const element = h("fieldset", { class: "form-object" },
    h("legend", {}, include ? h("label", {}, include, " ", name) : name,
      required ? h("span", { class: "req" }, "*") : null,
      h("span", { class: "type" }, nullable ? " object | null" : " object")),
    inner);
  const sync = () => {
    const on = !include || include.checked;
    inner.hidden = !on;
    element.classList.toggle("off", !on);
  };
  include?.addEventListener("change", sync);
  const write = (value) => {
    if (include) include.checked = value !== undefined && value !== null;
    writeAll(value ?? undefined);
    sync();
  };
  write(schema.default);
  return {
    element,
    read() {
      if (include && !include.checked) return nullable && required ? null : undefined;
      return Object.fromEntries(children.map(([k, c]) => [k, c.read()]).filter(([, v]) => v !== undefined));
    },
    write,
  };
}

function scalarInput(schema, name, id, required) {
  const initial = schema.default;
  if (Array.isArray(schema.enum)) return enumInput(schema, id, required, initial);
  switch (schema.type) {
    case "string":
      return textInput(schema, name, id, initial);
    case "integer":
    case "number":
      return numberInput(schema, id, initial);
    case "boolean":
      return boolInput(id, required, initial);
    default:
      return jsonInput(schema, id, initial);
  }
}

function textInput(schema, name, id, initial) {
  const long = LONG_TEXT.test(name ?? "");
  const el = long
    ? h("textarea", { id, rows: 3, name: name ?? "" })
    : h("input", { id, type: "text", name: name ?? "" });
  const write = (v) => { el.value = v === undefined || v === null ? "" : String(v); };
  write(initial);
  return { element: el, read: () => (el.value === "" ? undefined : el.value), write };
}

function numberInput(schema, id, initial) {
  const el = h("input", { id, type: "number", step: schema.type === "integer" ? "1" : "any" });
  const write = (v) => { el.value = v === undefined || v === null ? "" : String(v); };
  write(initial);
  return {
    element: el,
    read(path) {
      if (el.value === "") {
        if (el.validity.badInput) throw new FormError(path, "not a number");
        return undefined;
      }
      const n = Number(el.value);
      if (!Number.isFinite(n)) throw new FormError(path, "not a number");
      return n;
    },
    write,
  };
}

function boolInput(id, required, initial) {
  if (required || typeof initial === "boolean") {
    const el = h("input", { id, type: "checkbox", checked: initial === true });
    return { element: el, read: () => el.checked, write: (v) => { el.checked = v === true; } };
  }
  const el = h("select", { id }, h("option", { value: "" }, "(not set)"),
    h("option", { value: "true" }, "true"), h("option", { value: "false" }, "false"));
  return {
    element: el,
    read: () => (el.value === "" ? undefined : el.value === "true"),
    write: (v) => { el.value = typeof v === "boolean" ? String(v) : ""; },
  };
}

function enumInput(schema, id, required, initial) {
  const values = schema.enum;
  const el = h("select", { id },
    required ? null : h("option", { value: "" }, "(not set)"),
    values.map((v, i) => h("option", { value: String(i) }, typeof v === "string" ? v : JSON.stringify(v))));
  const write = (v) => {
    const i = values.findIndex((x) => JSON.stringify(x) === JSON.stringify(v));
    el.value = i >= 0 ? String(i) : required ? "0" : "";
  };
  write(initial);
  return { element: el, read: () => (el.value === "" ? undefined : values[Number(el.value)]), write };
}

function jsonInput(schema, id, initial) {
  const el = h("textarea", { id, rows: 3, class: "code", spellcheck: false,
    placeholder: schema.type === "array" ? "[ ... ] as JSON" : "JSON" });
  const write = (v) => { el.value = v === undefined ? "" : JSON.stringify(v, null, 2); };
  write(initial);
  return {
    element: el,
    read(path) {
      if (el.value.trim() === "") return undefined;
      try {
        return JSON.parse(el.value);
      } catch (err) {
        throw new FormError(path, `not JSON (${err.message})`);
      }
    },
    write,
  };
}
