// Streams: pick a stream, a group and (optionally) an item; watch it live.

import { errorBox, fill, h, jsonBlock } from "../dom.js";
import { liveGroup, liveItem } from "../live.js";

/** The Streams view: `{element, show(params)}`. */
export function streamsView({ streams, hrefFor, replaceHash }) {
  const select = h("select", { id: "stream-name", name: "stream" },
    streams.map((s) => h("option", { value: s.name }, s.name)));
  const group = h("input", { id: "stream-group", name: "group", type: "text", placeholder: "a trace id, a user id…", autocomplete: "off" });
  const item = h("input", { id: "stream-item", name: "id", type: "text", placeholder: "empty: the whole group", autocomplete: "off" });
  const problems = h("div", { class: "form-errors" });
  const schemaSlot = h("div", { class: "schema-slot" });
  const watchSlot = h("div", { class: "watch-slot" });
  const stopButton = h("button", { type: "button", class: "stop", disabled: true, onclick: () => stop(true) }, "Stop");
  let watching = null;
  let watchingKey = "";

  const form = h("form", { class: "card watch-form", novalidate: true, onsubmit: (e) => { e.preventDefault(); watch(true); } },
    h("div", { class: "row" },
      h("div", { class: "form-field" }, h("label", { for: select.id }, h("span", { class: "name" }, "Stream")), select),
      h("div", { class: "form-field grow" }, h("label", { for: group.id }, h("span", { class: "name" }, "Group id")), group),
      h("div", { class: "form-field grow" }, h("label", { for: item.id }, h("span", { class: "name" }, "Item id"), h("span", { class: "type" }, "optional")), item),
      h("div", { class: "actions" }, h("button", { type: "submit", class: "primary watch" }, "Watch"), stopButton)),
    problems);
  select.addEventListener("change", showSchema);
  const element = h("div", { class: "view streams" },
    streams.length ? [form, watchSlot, schemaSlot]
      : h("section", { class: "card" }, h("p", { class: "muted" }, "No streams. Add a *_stream.py with a StreamConfig.")));

  function showSchema() {
    const stream = streams.find((s) => s.name === select.value);
    fill(schemaSlot, stream ? h("details", { class: "card schema" },
      h("summary", {}, `Schema of ${stream.name}`, h("span", { class: "muted" }, ` · ${stream.file} · storage ${stream.storageType}`)),
      jsonBlock(stream.schema)) : null);
  }

  function stop(clearHash) {
    watching?.stop();
    watching = null;
    watchingKey = "";
    stopButton.disabled = true;
    if (clearHash) replaceHash(hrefFor("streams", { stream: select.value }));
  }

  function watch(fromForm) {
    fill(problems);
    const stream = streams.find((s) => s.name === select.value);
    const groupId = group.value.trim();
    const itemId = item.value.trim();
    const bad = [];
    if (!stream) bad.push("pick a stream");
    if (!groupId) bad.push("type a group id");
    if (bad.length) {
      fill(problems, errorBox("Cannot watch yet", bad));
      return;
    }
    const key = JSON.stringify([stream.name, groupId, itemId]);
    if (key === watchingKey) return;
    stop(false);
    watchingKey = key;
    watching = itemId
      ? liveItem({ stream: stream.name, group: groupId, id: itemId, schema: stream.schema, title: "Item" })
      : liveGroup({ stream: stream.name, group: groupId, schema: stream.schema });
    fill(watchSlot, watching.element);
    stopButton.disabled = false;
    if (fromForm) {
      replaceHash(hrefFor("streams", { stream: stream.name, group: groupId, ...(itemId ? { id: itemId } : {}) }));
    }
  }

  showSchema();
  return {
    element,
    show(params) {
      if (!streams.length) return;
      const name = params.get("stream");
      if (name && streams.some((s) => s.name === name)) select.value = name;
      else if (name) fill(problems, errorBox(`No stream named ${JSON.stringify(name)}`, [`defined streams: ${streams.map((s) => s.name).join(", ")}`]));
      showSchema();
      if (params.has("group")) {
        group.value = params.get("group");
        item.value = params.get("id") ?? "";
        watch(false);
      }
    },
  };
}
