// Endpoints: each API step with a form built from its body schema, a Test button, the
// response, and (when the response is a stream item) that item's live feed beside it.

import { chip, errorBox, fill, h, jsonBlock, pretty } from "../dom.js";
import { liveItem } from "../live.js";
import { buildForm, FormError } from "../schema-form.js";

const BODYLESS = new Set(["GET", "DELETE"]);
const PATH_PARAM = /\{([^}/]+)\}/g;

/** The Endpoints view: `{element, show(params)}`. */
export function endpointsView({ steps, streams, hrefFor }) {
  const api = steps.filter((s) => s.type === "api");
  const panels = new Map();
  const links = new Map();
  const detail = h("div", { class: "endpoint-detail" });
  const list = h("nav", { class: "endpoint-list", "aria-label": "Endpoints" },
    api.length ? api.map((step) => {
      const link = h("a", { href: hrefFor("endpoints", { step: step.name }), dataset: { step: step.name } },
        chip(step.method, `method ${step.method.toLowerCase()}`),
        h("span", { class: "path" }, step.path),
        h("span", { class: "step-name" }, step.name));
      links.set(step.name, link);
      return link;
    }) : h("p", { class: "muted" }, "No API steps. Add a *_step.py with an ApiRouteConfig."));
  const element = h("div", { class: "view endpoints" }, h("aside", { class: "sidebar" }, list), detail);
  let current = null;

  return {
    element,
    show(params) {
      // The tab's plain link comes back to the endpoint you were on.
      const name = params.get("step") ?? current ?? api[0]?.name;
      current = name;
      const step = api.find((s) => s.name === name);
      for (const [stepName, link] of links) link.classList.toggle("active", stepName === step?.name);
      if (!step) {
        fill(detail, name ? errorBox(`No API step named ${JSON.stringify(name)}`) : null);
        return;
      }
      if (!panels.has(step.name)) panels.set(step.name, endpointPanel(step, streams, hrefFor));
      // Panels stay alive when hidden, so a live item keeps updating while you look elsewhere.
      for (const panel of panels.values()) panel.hidden = panel !== panels.get(step.name);
      if (!detail.contains(panels.get(step.name))) detail.append(panels.get(step.name));
    },
  };
}

function endpointPanel(step, streams, hrefFor) {
  const pathParams = [...step.path.matchAll(PATH_PARAM)].map((m) => paramName(m[1]));
  const idBase = `ep-${step.name.replace(/\W/g, "_")}`;
  const pathInputs = pathParams.map((p) => [p, h("input", { type: "text", id: `${idBase}-path-${p}`, required: true })]);
  const queryInputs = (step.queryParams ?? []).map((q) => [q.name, h("input", { type: "text", id: `${idBase}-query-${q.name}` }), q.description]);
  const hasBody = step.bodySchema || !BODYLESS.has(step.method);
  const form = step.bodySchema ? buildForm(step.bodySchema, idBase) : null;
  const raw = h("textarea", { class: "code raw-body", rows: 8, spellcheck: false, id: `${idBase}-raw`, "aria-label": "Request body as JSON" });
  let mode = form ? "form" : "json";

  const formPane = h("div", { class: "body-form" }, form?.element);
  const rawPane = h("div", { class: "body-raw" }, raw);
  const formError = h("div", { class: "form-errors" });
  const modeButtons = h("div", { class: "segmented", role: "group", "aria-label": "Body editor" },
    h("button", { type: "button", dataset: { mode: "form" }, disabled: !form, onclick: () => setMode("form") }, "Form"),
    h("button", { type: "button", dataset: { mode: "json" }, onclick: () => setMode("json") }, "JSON"));

  function setMode(next) {
    fill(formError);
    try {
      if (next === "json" && mode === "form" && form) raw.value = pretty(form.read() ?? {});
      if (next === "form" && mode === "json" && form) form.write(raw.value.trim() ? JSON.parse(raw.value) : {});
    } catch (err) {
      fill(formError, errorBox("Cannot switch editors", [err.message]));
      return;
    }
    mode = next;
    formPane.hidden = mode !== "form";
    rawPane.hidden = mode !== "json";
    for (const b of modeButtons.querySelectorAll("button")) b.classList.toggle("active", b.dataset.mode === mode);
  }
  setMode(mode);

  const testButton = h("button", { type: "submit", class: "primary test" }, "Test");
  const responseSlot = h("div", { class: "response-slot" });
  const liveSlot = h("div", { class: "live-slot" });
  const results = h("div", { class: "results" }, responseSlot, liveSlot);
  let live = null;

  const request = h("form", {
    class: "card request",
    novalidate: true,
    onsubmit: (e) => { e.preventDefault(); send(); },
    onkeydown: (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); send(); }
    },
  },
    h("header", { class: "card-head" },
      h("h2", {}, chip(step.method, `method ${step.method.toLowerCase()}`), " ", h("code", {}, step.path)),
      h("span", { class: "step-name" }, step.name)),
    step.description ? h("p", { class: "description" }, step.description) : null,
    h("p", { class: "meta" },
      step.flows.length ? ["flows ", step.flows.map((f) => h("a", { href: hrefFor("flows", { flow: f }) }, chip(f, "flow")))] : null,
      step.emits.length ? [" emits ", step.emits.map((e) => chip(e.topic, "topic"))] : null,
      step.middleware?.length ? [" middleware ", step.middleware.map(middlewareChip)] : null,
      " ", h("span", { class: "file" }, step.file)),
    pathInputs.length ? h("fieldset", { class: "params" }, h("legend", {}, "Path"),
      pathInputs.map(([p, input]) => h("div", { class: "form-field" }, h("label", { for: input.id }, h("span", { class: "name" }, p), h("span", { class: "req" }, "*")), input))) : null,
    queryInputs.length ? h("fieldset", { class: "params" }, h("legend", {}, "Query"),
      queryInputs.map(([q, input, about]) => h("div", { class: "form-field" }, h("label", { for: input.id }, h("span", { class: "name" }, q)), input, about ? h("small", { class: "hint" }, about) : null))) : null,
    hasBody ? h("div", { class: "body-editor" },
      h("div", { class: "body-head" }, h("h3", {}, "Body"), modeButtons),
      formPane, rawPane) : null,
    formError,
    h("div", { class: "actions" }, testButton, h("span", { class: "muted keys" }, "or Ctrl+Enter")),
    schemaDetails(step));

  async function send() {
    if (testButton.disabled) return; // one request at a time per endpoint
    fill(formError);
    let url;
    let body;
    try {
      url = requestUrl(step.path, pathInputs, queryInputs);
      if (hasBody) body = mode === "form" ? JSON.stringify(form.read() ?? {}) : raw.value;
    } catch (err) {
      const where = err instanceof FormError ? "Fix the form" : "Cannot build the request";
      fill(formError, errorBox(where, [err.message]));
      return;
    }
    testButton.disabled = true;
    testButton.textContent = "Sending…";
    const started = performance.now();
    try {
      const response = await fetch(url, {
        method: step.method,
        headers: hasBody ? { "Content-Type": "application/json", Accept: "application/json" } : { Accept: "application/json" },
        body,
      });
      const text = await response.text();
      showResponse(response, text, Math.round(performance.now() - started), url);
    } catch (err) {
      fill(responseSlot, h("section", { class: "card response" },
        errorBox(`Request failed: ${err.message}`, [`${step.method} ${url}`])));
    } finally {
      testButton.disabled = false;
      testButton.textContent = "Test";
    }
  }

  function showResponse(response, text, ms, url) {
    let body;
    let isJson = false;
    try {
      body = text ? JSON.parse(text) : null;
      isJson = true;
    } catch {
      body = text;
    }
    const traceId = response.headers.get("x-trace-id");
    const cls = response.status < 300 ? "ok" : response.status < 500 ? "warn" : "bad";
    const failure = !response.ok && isJson && body && typeof body.error === "string";
    fill(responseSlot, h("section", { class: "card response", dataset: { status: response.status } },
      h("header", { class: "card-head" }, h("h3", {}, "Response"),
        h("span", { class: `status ${cls}` }, `${response.status} ${response.statusText}`),
        h("span", { class: "muted" }, `${ms} ms`)),
      h("dl", { class: "headers" },
        h("dt", {}, "request"), h("dd", {}, h("code", {}, `${step.method} ${url}`)),
        h("dt", {}, "x-trace-id"), h("dd", { class: "trace-id" }, traceId
          ? h("a", { href: hrefFor("logs", { trace_id: traceId }), title: "Logs of this trace" }, h("code", {}, traceId))
          : h("code", {}, "—")),
        h("dt", {}, "content-type"), h("dd", {}, response.headers.get("content-type") ?? "—")),
      failure ? errorBox(body.error, body.details ?? [], body.trace_id ? h("p", { class: "muted" }, "trace ",
        h("a", { href: hrefFor("logs", { trace_id: body.trace_id }), title: "Logs of this trace" }, body.trace_id)) : null) : null,
      isJson ? jsonBlock(body, "json response-body") : h("pre", { class: "json response-body" }, text)));
    const pointer = isJson && body && typeof body === "object" ? body.__motia : null;
    if (pointer?.type === "state-stream") followItem(pointer);
  }

  function followItem({ streamName, groupId, id }) {
    live?.stop();
    const schema = streams.find((s) => s.name === streamName)?.schema ?? null;
    live = liveItem({ stream: streamName, group: groupId, id, schema, title: "Live item" });
    live.element.append(h("p", { class: "open-in" },
      h("a", { href: hrefFor("streams", { stream: streamName, group: groupId, id }) }, "Open in Streams"), " · ",
      h("a", { href: hrefFor("streams", { stream: streamName, group: groupId }) }, "Watch the group")));
    fill(liveSlot, live.element);
    results.classList.add("with-live");
  }

  return h("div", { class: "endpoint-panel", dataset: { step: step.name } }, request, results);
}

/** One middleware of the route, outermost first; hovering names the file it is in. */
function middlewareChip({ name, file }) {
  const element = chip(name, "middleware");
  if (file) element.title = file;
  return element;
}

function schemaDetails(step) {
  const parts = [];
  if (step.bodySchema) parts.push(h("details", {}, h("summary", {}, "Body schema"), jsonBlock(step.bodySchema)));
  for (const [status, schema] of Object.entries(step.responseSchema ?? {})) {
    parts.push(h("details", {}, h("summary", {}, `Response ${status} schema`), jsonBlock(schema)));
  }
  return parts.length ? h("div", { class: "schemas" }, parts) : null;
}

/** `{id}` or, with aiohttp's pattern syntax, `{id:\\d+}`: the name either way. */
function paramName(spec) {
  return spec.split(":")[0];
}

function requestUrl(path, pathInputs, queryInputs) {
  const values = new Map(pathInputs.map(([name, input]) => [name, input.value]));
  const filled = path.replace(PATH_PARAM, (_, spec) => {
    const name = paramName(spec);
    const value = values.get(name) ?? "";
    if (value === "") throw new FormError(name, "path parameter is required");
    return encodeURIComponent(value);
  });
  const query = new URLSearchParams();
  for (const [name, input] of queryInputs) if (input.value !== "") query.append(name, input.value);
  const qs = query.toString();
  // Under the page's own path: behind a proxy's root path, /open-ai is /motia/open-ai.
  const url = new URL(`.${filled}${qs ? `?${qs}` : ""}`, document.baseURI);
  return `${url.pathname}${url.search}`;
}
