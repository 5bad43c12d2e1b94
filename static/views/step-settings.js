// A queued step's settings on its Flows card: the values in effect, those the step sets
// itself marked (bold, with a "step" tag), the server's defaults plain.

import { chip, h } from "../dom.js";

const seconds = (value) => (value === null ? "none" : `${value} s`);

/** One row per setting: its key in `step.settings`, label, how to show it, whence its default. */
const ROWS = [
  { key: "max_attempts", label: "attempts", show: String,
    fallback: (step) => (step.type === "cron" ? "cron default: the next tick is the retry" : "server default (--max-attempts)") },
  { key: "backoff", label: "back-off", show: (v) => `${seconds(v)}, doubling`, fallback: () => "server default (--retry-backoff)" },
  { key: "timeout", label: "timeout", show: seconds, fallback: () => "server default (--handler-timeout)" },
  { key: "concurrency", label: "concurrency", show: (v) => (v === null ? "no limit" : String(v)), events: true,
    fallback: () => "no limit of its own (--max-handlers bounds all steps together)" },
];

/** The settings of an event or cron step as a small list; null for other steps. */
export function queueSettings(step) {
  const { settings } = step;
  if (!settings) return null;
  const own = new Set(settings.own);
  const rows = ROWS.filter((row) => !row.events || step.type === "event");
  return h("dl", { class: "queue-settings", "aria-label": "Queue settings" }, rows.map((row) => {
    const mine = own.has(row.key);
    return [
      h("dt", {}, row.label),
      h("dd", { class: mine ? "own" : "default", dataset: { setting: row.key },
        title: mine ? `set in the step's config (${row.key}=)` : row.fallback(step) },
      h("span", { class: "value" }, row.show(settings[row.key])), mine ? chip("step", "own") : null),
    ];
  }));
}
