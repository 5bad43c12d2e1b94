// Live views of stream items: one item as fields, a group as a table. Both use motia-stream.js.

import { subscribeGroup, subscribeItem } from "./motia-stream.js";
import { introspection } from "./api.js";
import { chip, clock, errorBox, fieldRows, fill, h, show } from "./dom.js";

function schemaFields(schema) {
  return Object.keys(schema?.properties ?? {});
}

function describeError(err) {
  const status = err.status ? ` (HTTP ${err.status})` : "";
  return errorBox(`${err.message}${status}`, err.details ?? []);
}

function badge(state) {
  const labels = { waiting: "waiting", live: "live", deleted: "deleted", error: "error", stopped: "stopped" };
  return chip(labels[state] ?? state, `state ${state}`);
}

function customEventRow(event) {
  return h("li", {}, h("time", {}, clock()), " ", h("code", {}, event.type),
    event.id ? ` on ${event.id}` : "", " ", h("span", { class: "muted" }, show(event.data)));
}

/** One item, updated live: `{element, stop()}`. */
// What an item card and a group table do alike with refusals and custom events.
function feedOptions(setState, errors, events) {
  return {
    onError: (err) => {
      setState("error");
      fill(errors, describeError(err));
    },
    onEvent: (event) => {
      events.prepend(customEventRow(event));
      while (events.children.length > 20) events.lastChild.remove();
    },
  };
}

export function liveItem({ stream, group, id, schema = null, title = null }) {
  const status = h("span", { class: "live-status" });
  const meta = h("span", { class: "muted live-meta" });
  const body = h("div", { class: "live-body" }, h("p", { class: "muted" }, "Waiting for the item…"));
  const events = h("ul", { class: "custom-events" });
  const errors = h("div", { class: "live-errors" });
  const element = h("section", { class: "card live-item", dataset: { stream, group, id } },
    h("header", { class: "card-head" },
      h("h3", {}, title ?? "Live item"), meta, status),
    h("p", { class: "address" }, h("code", {}, `${stream} / ${group} / ${id}`)),
    errors, body, events);
  let updates = 0;
  const setState = (state) => fill(status, badge(state));
  setState("waiting");
  element.dataset.updates = "0";

  const stop = subscribeItem(stream, group, id, (item) => {
    updates += 1;
    element.dataset.updates = String(updates);
    fill(errors);
    if (item === null) {
      setState("deleted");
      fill(body, h("p", { class: "muted" }, "The item was deleted."));
    } else {
      setState("live");
      fill(body, fieldRows(item, schemaFields(schema)));
    }
    fill(meta, `${updates} update${updates === 1 ? "" : "s"} · ${clock()}`);
  }, feedOptions(setState, errors, events));
  return {
    element,
    stop() {
      stop();
      setState("stopped");
    },
  };
}

/** A group as a table whose rows appear, change and disappear live: `{element, stop()}`. */
export function liveGroup({ stream, group, schema = null }) {
  const status = h("span", { class: "live-status" });
  const meta = h("span", { class: "muted live-meta" });
  const table = h("div", { class: "table-wrap" });
  const events = h("ul", { class: "custom-events" });
  const errors = h("div", { class: "live-errors" });
  const element = h("section", { class: "card live-group", dataset: { stream, group } },
    h("header", { class: "card-head" }, h("h3", {}, "Group"), meta, status),
    h("p", { class: "address" }, h("code", {}, `${stream} / ${group}`)),
    errors, table, events);
  const fields = schemaFields(schema);
  let previous = new Map(); // id -> JSON, to mark what changed
  let live = false;
  let stopped = false;
  const setState = (state) => fill(status, badge(state));
  setState("waiting");

  const render = (items) => {
    const columns = [...new Set(["id", ...fields, ...items.flatMap((i) => Object.keys(i))])]
      .filter((c) => c !== "__motia");
    const seen = new Map(items.map((i) => [i.id, JSON.stringify(i)]));
    const rows = items.map((item) => {
      const before = previous.get(item.id);
      const changed = before === undefined ? "new" : before !== seen.get(item.id) ? "changed" : "";
      return h("tr", { dataset: { id: item.id }, class: changed ? `flash ${changed}` : null },
        columns.map((c) => h("td", { class: item[c] === null ? "null" : null, title: show(item[c]) },
          item[c] === null ? "null" : show(item[c]))));
    });
    previous = seen;
    fill(table, items.length
      ? h("table", { class: "items" }, h("thead", {}, h("tr", {}, columns.map((c) => h("th", {}, c)))),
        h("tbody", {}, rows))
      : h("p", { class: "muted empty" }, "No items in this group yet. Rows appear here as they are set."));
    fill(meta, `${items.length} item${items.length === 1 ? "" : "s"} · ${clock()}`);
    element.dataset.count = String(items.length);
  };

  const stop = subscribeGroup(stream, group, (items) => {
    live = true;
    fill(errors);
    setState("live");
    render(items);
  }, feedOptions(setState, errors, events));
  // The items as they are now, in case the feed is slow to start; the feed's own
  // state wins once it has spoken.
  introspection.group(stream, group).then((items) => {
    if (!live && !stopped) render(items.map(({ __motia, ...item }) => item));
  }, (err) => {
    if (!stopped) fill(errors, describeError(err));
  });
  return {
    element,
    stop() {
      stopped = true;
      stop();
      setState("stopped");
    },
  };
}
