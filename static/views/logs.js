// Logs: the server's recent log records, filtered by trace, step and level, followed live;
// and the dead letters: events whose handler failed every attempt.

import { introspection, logFeedUrl } from "../api.js";
import { chip, clock, errorBox, fill, h, show } from "../dom.js";

const FILTERS = ["trace_id", "step", "level"];
const LOADED = 500; // records fetched when the filters change
const KEPT = 2000; // lines kept on the page; the oldest go first

/** The Logs view: `{element, show(params)}`. */
export function logsView({ steps, hrefFor, replaceHash }) {
  const trace = h("input", { id: "logs-trace", name: "trace_id", type: "text", placeholder: "any trace", autocomplete: "off", spellcheck: false });
  const step = h("select", { id: "logs-step", name: "step" },
    h("option", { value: "" }, "any step"), steps.map((s) => h("option", { value: s.name }, s.name)));
  const level = h("select", { id: "logs-level", name: "level" },
    h("option", { value: "" }, "any level"),
    ["info", "warning", "error"].map((l) => h("option", { value: l }, `${l} and above`)));
  const live = h("input", { id: "logs-live", type: "checkbox", checked: true, onchange: () => setLive(live.checked) });
  const refresh = h("button", { type: "button", class: "refresh", onclick: () => load() }, "Refresh");
  const form = h("form", { class: "card log-filters", novalidate: true, onsubmit: (e) => { e.preventDefault(); apply(); } },
    h("div", { class: "row" },
      field(trace, "Trace id", "grow"),
      field(step, "Step"),
      field(level, "Level"),
      h("div", { class: "actions" },
        h("button", { type: "submit", class: "primary" }, "Show"),
        h("button", { type: "button", onclick: () => { setFilters({}); apply(); } }, "Clear"),
        h("label", { class: "toggle", for: live.id }, live, " Follow live"))));
  step.addEventListener("change", apply);
  level.addEventListener("change", apply);

  const status = h("span", { class: "live-status" });
  const meta = h("span", { class: "muted live-meta" });
  const errors = h("div", { class: "live-errors" });
  const lines = h("ol", { class: "log-lines", "aria-label": "Log records" });
  const scroller = h("div", { class: "log-scroll" }, lines);
  const empty = h("p", { class: "muted empty" });
  const list = h("section", { class: "card log-list" },
    h("header", { class: "card-head" }, h("h2", {}, "Logs"), meta, refresh, status),
    errors, scroller, empty);
  const dead = deadLetters(hrefFor);
  const element = h("div", { class: "view logs" }, form, list, dead.element);

  let filters = null; // what is shown: {trace_id, step, level} without empty ones
  let source = null;
  let generation = 0; // bumped per load: late answers to an earlier one are ignored
  let lastSeq = 0;
  let count = 0;

  function setFilters(values) {
    trace.value = values.trace_id ?? "";
    if (values.step && ![...step.options].some((o) => o.value === values.step)) {
      step.append(h("option", { value: values.step }, `${values.step} (not loaded)`));
    }
    step.value = values.step ?? "";
    level.value = [...level.options].some((o) => o.value === values.level) ? values.level : "";
  }

  function readFilters() {
    const values = { trace_id: trace.value.trim(), step: step.value, level: level.value };
    return Object.fromEntries(Object.entries(values).filter(([, v]) => v));
  }

  function setState(state, label = state) {
    fill(status, chip(label, `state ${state}`));
    list.dataset.state = label;
  }

  function apply() {
    replaceHash(hrefFor("logs", readFilters()));
    load();
  }

  async function load() {
    stopFeed();
    const gen = (generation += 1);
    filters = readFilters();
    lastSeq = 0;
    count = 0;
    lines.replaceChildren();
    fill(errors);
    setState("waiting", "loading");
    let records;
    try {
      records = await introspection.logs({ ...filters, limit: String(LOADED) });
    } catch (err) {
      if (gen !== generation) return;
      setState("error");
      fill(errors, errorBox(`${err.message}${err.status ? ` (HTTP ${err.status})` : ""}`, err.details ?? []));
      summarize();
      return;
    }
    if (gen !== generation) return;
    append(records);
    summarize();
    if (live.checked) follow();
    else setState("stopped", "paused");
  }

  function follow() {
    stopFeed();
    const feed = new EventSource(logFeedUrl(filters, lastSeq));
    source = feed;
    setState("waiting", "connecting");
    feed.onopen = () => { fill(errors); setState("live"); };
    feed.addEventListener("log", (e) => append([JSON.parse(e.data)]));
    feed.addEventListener("dropped", (e) => {
      const { dropped } = JSON.parse(e.data);
      note(`${dropped} record${dropped === 1 ? "" : "s"} skipped: the page fell behind`);
    });
    feed.onerror = () => {
      if (feed !== source) return;
      if (feed.readyState === EventSource.CLOSED) {
        setState("error");
        fill(errors, errorBox("The log feed was refused", ["press Refresh to try again"]));
      } else {
        setState("waiting", "reconnecting");
      }
    };
  }

  function stopFeed() {
    source?.close();
    source = null;
  }

  function setLive(on) {
    if (!on) {
      stopFeed();
      setState("stopped", "paused");
    } else if (filters) {
      follow();
    }
  }

  function append(records) {
    const fresh = records.filter((r) => r.seq > lastSeq);
    if (!fresh.length) return;
    const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
    lines.append(...fresh.map((r) => logLine(r, filters, hrefFor)));
    lastSeq = fresh.at(-1).seq;
    count += fresh.length;
    while (lines.children.length > KEPT) lines.firstChild.remove();
    summarize(); // first: a hidden list cannot scroll
    if (atBottom) scroller.scrollTop = scroller.scrollHeight;
  }

  function note(text) {
    lines.append(h("li", { class: "log-note" }, text));
  }

  function summarize() {
    fill(meta, `${count} record${count === 1 ? "" : "s"}${filters && Object.keys(filters).length ? " matching" : ""} · ${clock()}`);
    scroller.hidden = count === 0;
    fill(empty, count ? null : emptyText(filters));
  }

  return {
    element,
    show(params) {
      dead.load();
      if (filters && !FILTERS.some((k) => params.has(k))) {
        // The tab's plain link comes back to the filters you had.
        replaceHash(hrefFor("logs", filters));
        return;
      }
      setFilters(Object.fromEntries(FILTERS.filter((k) => params.get(k)).map((k) => [k, params.get(k)])));
      // A link to the filters already shown keeps the list (and its scroll) as it is.
      if (!filters || JSON.stringify(readFilters()) !== JSON.stringify(filters)) load();
    },
  };
}

function field(input, label, cls = "") {
  return h("div", { class: `form-field ${cls}`.trim() }, h("label", { for: input.id }, h("span", { class: "name" }, label)), input);
}

function emptyText(filters) {
  if (filters?.trace_id) return "No records for this trace yet. They appear here as its steps log.";
  if (filters && Object.keys(filters).length) return "No records match. New ones appear here as they are logged.";
  return "No records yet. ctx.logger lines from your steps appear here as they are logged.";
}

/** `12:00:01.234`: log lines are often less than a second apart. */
function timeOf(seconds) {
  const date = new Date(seconds * 1000);
  return `${clock(date)}.${String(date.getMilliseconds()).padStart(3, "0")}`;
}

function logLine(record, filters, hrefFor) {
  const linkTo = (extra) => hrefFor("logs", { ...filters, ...extra });
  const fields = Object.entries(record.fields ?? {});
  return h("li", {
    class: `log-line level-${record.level}`,
    dataset: { seq: record.seq, step: record.step ?? "", trace: record.trace_id ?? "" },
  },
    h("time", { datetime: new Date(record.time * 1000).toISOString() }, timeOf(record.time)),
    chip(record.level, `level ${record.level}`),
    h("span", { class: "where" },
      record.step ? h("a", { class: "step", href: linkTo({ step: record.step }) }, record.step)
        : h("span", { class: "logger muted" }, record.logger),
      record.trace_id ? h("a", { class: "trace", href: hrefFor("logs", { trace_id: record.trace_id }), title: `trace ${record.trace_id}` },
        record.trace_id.slice(0, 8)) : null),
    h("span", { class: "message" }, record.message),
    fields.length ? h("span", { class: "log-fields" }, fields.map(([k, v]) =>
      h("span", { class: "log-field", dataset: { field: k } }, h("span", { class: "key" }, k), "=", show(v)))) : null,
    record.exception ? h("details", { class: "exception" }, h("summary", {}, "traceback"),
      h("pre", {}, record.exception)) : null);
}

/** The dead letters card: `{element, load()}`. */
function deadLetters(hrefFor) {
  const meta = h("span", { class: "muted live-meta" });
  const errors = h("div", { class: "live-errors" });
  const body = h("div", { class: "table-wrap" });
  const refresh = h("button", { type: "button", class: "refresh", onclick: () => load() }, "Refresh");
  const element = h("section", { class: "card dead-letters", id: "dead-letters" },
    h("header", { class: "card-head" }, h("h2", {}, "Dead letters"), meta, refresh),
    h("p", { class: "muted hint" }, "Events whose handler failed every attempt, newest first."),
    errors, body);
  let generation = 0;

  async function load() {
    const gen = (generation += 1);
    refresh.disabled = true;
    try {
      const letters = await introspection.deadLetters();
      if (gen !== generation) return;
      fill(errors);
      render(letters);
    } catch (err) {
      if (gen !== generation) return;
      fill(errors, errorBox(`${err.message}${err.status ? ` (HTTP ${err.status})` : ""}`, err.details ?? []));
    } finally {
      if (gen === generation) refresh.disabled = false;
    }
  }

  function render(letters) {
    element.dataset.count = String(letters.length);
    fill(meta, `${letters.length} · ${clock()}`);
    fill(body, letters.length ? h("table", { class: "items letters" },
      h("thead", {}, h("tr", {}, ["failed at", "step", "topic", "group", "attempts", "error", "trace", "data"].map((c) => h("th", {}, c)))),
      h("tbody", {}, letters.map((l) => h("tr", { dataset: { step: l.step, trace: l.trace_id } },
        h("td", {}, timeOf(l.failed_at)),
        h("td", {}, l.step),
        h("td", {}, chip(l.topic, "topic")),
        h("td", { class: l.group == null ? "muted" : "" }, l.group ?? "—"),
        h("td", { class: "num" }, String(l.attempts)),
        h("td", { class: "error-text", title: l.error }, l.error),
        h("td", {}, h("a", { href: hrefFor("logs", { trace_id: l.trace_id }), title: "Logs of this trace" }, l.trace_id.slice(0, 8))),
        h("td", { title: show(l.data) }, show(l.data))))))
      : h("p", { class: "muted empty" }, "None. An event lands here once its handler has failed max_attempts times."));
  }

  return { element, load };
}
