// The Flows view's actions: run a cron step now, and emit an event to a topic by hand.

import { actions } from "../api.js";
import { errorBox, fill, h } from "../dom.js";

/** A cron card's "Run now" button and the line that says what came of it. */
export function runNow(step, hrefFor) {
  const result = h("div", { class: "action-result", role: "status" });
  const button = h("button", { type: "button", class: "run-now", onclick: run }, "Run now");

  async function run() {
    button.disabled = true;
    try {
      const { traceId } = await actions.runCron(step.name);
      fill(result, "Started · ", traceLink(traceId, hrefFor));
    } catch (err) {
      fill(result, errorBox(err.message, err.details));
    } finally {
      button.disabled = false;
    }
  }
  return h("div", { class: "run-now-box" }, button, result);
}

/** The "Emit" card: a topic that steps subscribe to, JSON data, an optional group. */
export function emitCard(steps, hrefFor) {
  const topics = [...new Set(steps.flatMap((s) => s.subscribes ?? []))].sort();
  if (!topics.length) return null;
  const topic = h("select", { id: "emit-topic", name: "topic" }, topics.map((t) => h("option", { value: t }, t)));
  const data = h("textarea", { id: "emit-data", name: "data", class: "code", rows: 2, spellcheck: false }, "{}");
  const group = h("input", { id: "emit-group", name: "message_group_id", type: "text", placeholder: "none", autocomplete: "off" });
  const result = h("div", { class: "action-result", role: "status" });
  const send = h("button", { type: "submit", class: "primary" }, "Emit");

  async function submit(event) {
    event.preventDefault();
    let value;
    try {
      value = JSON.parse(data.value);
    } catch (err) {
      fill(result, errorBox("The data is not JSON", [err.message]));
      return;
    }
    send.disabled = true;
    try {
      const answer = await actions.emit(topic.value, value, group.value.trim());
      fill(result, `Queued for ${answer.steps.join(", ")} · `, traceLink(answer.traceId, hrefFor));
    } catch (err) {
      fill(result, errorBox(err.message, err.details));
    } finally {
      send.disabled = false;
    }
  }
  return h("form", { class: "card emit-form", novalidate: true, onsubmit: submit },
    h("header", { class: "card-head" }, h("h2", {}, "Emit"),
      h("span", { class: "muted" }, "an event to the steps on a topic, as a step's emit would")),
    h("div", { class: "row" }, field(topic, "Topic"), field(group, "Message group id", "grow")),
    field(data, "Data (JSON)"),
    h("div", { class: "actions" }, send),
    result);
}

function field(input, label, cls = "") {
  return h("div", { class: `form-field ${cls}`.trim() }, h("label", { for: input.id }, h("span", { class: "name" }, label)), input);
}

function traceLink(traceId, hrefFor) {
  return h("a", { class: "trace", href: hrefFor("logs", { trace_id: traceId }), title: "Logs of this trace" },
    "trace ", h("code", {}, traceId.slice(0, 8)));
}
