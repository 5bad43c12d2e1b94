// Flows: the steps of each flow, left to right in the order events travel, with their topics.
// Virtual edges (virtual_emits / virtual_subscribes: a person, an outside system) are dashed;
// conditional emits are drawn in another colour; an emit's label is written on its edge.

import { chip, h } from "../dom.js";
import { emitCard, runNow } from "./flow-actions.js";
import { queueSettings } from "./step-settings.js";

const SVG = "http://www.w3.org/2000/svg";
const NO_FLOW = "(no flow)";
const KINDS = { api: "API", event: "event", cron: "cron", noop: "noop" };

/** What a step sends: its emits and its virtual emits, as `{topic, label, conditional, virtual}`. */
function outs(step) {
  return [...step.emits.map((e) => ({ ...e, virtual: false })), ...step.virtualEmits.map((e) => ({ ...e, virtual: true }))];
}

/** What a step listens to: `{topic, virtual}`. */
function ins(step) {
  return [...(step.subscribes ?? []).map((topic) => ({ topic, virtual: false })),
    ...step.virtualSubscribes.map((topic) => ({ topic, virtual: true }))];
}

/** The Flows view: `{element, show(params)}`. */
export function flowsView({ steps, hrefFor }) {
  const flows = new Map();
  for (const step of steps) {
    for (const flow of step.flows.length ? step.flows : [NO_FLOW]) {
      if (!flows.has(flow)) flows.set(flow, []);
      flows.get(flow).push(step);
    }
  }
  const heard = new Set(steps.flatMap((s) => ins(s).map((i) => i.topic)));
  const emitted = new Set(steps.flatMap((s) => outs(s).map((o) => o.topic)));
  const diagrams = [];
  const cards = [...flows].map(([name, members]) => {
    const diagram = flowDiagram(members, heard, emitted, hrefFor);
    diagrams.push(diagram);
    return h("section", { class: "card flow", id: `flow-${name}`, dataset: { flow: name } },
      h("header", { class: "card-head" }, h("h2", {}, name),
        h("span", { class: "muted" }, `${members.length} step${members.length === 1 ? "" : "s"}`)),
      diagram.element);
  });
  const element = h("div", { class: "view flows" },
    cards.length ? cards : h("section", { class: "card" }, h("p", { class: "muted" }, "No steps loaded.")),
    emitCard(steps, hrefFor));
  const redraw = () => diagrams.forEach((d) => d.draw());
  new ResizeObserver(redraw).observe(element);

  return {
    element,
    show(params) {
      requestAnimationFrame(() => {
        redraw();
        const flow = params.get("flow");
        if (flow) document.getElementById(`flow-${flow}`)?.scrollIntoView({ block: "start" });
      });
    },
  };
}

/** Columns by how many hops an event takes from the flow's entry steps. */
function layers(members) {
  const depth = new Map(members.map((s) => [s.name, 0]));
  // Longest path, bounded so that a cycle of topics cannot loop forever.
  for (let round = 0; round < members.length; round += 1) {
    let moved = false;
    for (const from of members) {
      for (const to of members) {
        if (to === from || !outs(from).some((o) => ins(to).some((i) => i.topic === o.topic))) continue;
        if (depth.get(to.name) < depth.get(from.name) + 1) {
          depth.set(to.name, depth.get(from.name) + 1);
          moved = true;
        }
      }
    }
    if (!moved) break;
  }
  const columns = [];
  for (const step of members) {
    const d = Math.min(depth.get(step.name), members.length - 1);
    (columns[d] ??= []).push(step);
  }
  return columns.filter(Boolean);
}

let diagramCount = 0;

function flowDiagram(members, heard, emitted, hrefFor) {
  const arrowId = `arrow-${(diagramCount += 1)}`;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "edges");
  svg.setAttribute("aria-hidden", "true");
  const columns = layers(members).map((column) => h("div", { class: "flow-column" },
    column.map((step) => stepCard(step, heard, emitted, hrefFor))));
  const grid = h("div", { class: "flow-grid", style: `--columns: ${columns.length}` }, columns);
  const element = h("div", { class: "flow-diagram" }, svg, grid);

  function draw() {
    svg.replaceChildren();
    const box = element.getBoundingClientRect();
    if (!box.width || getComputedStyle(svg).display === "none") return;
    svg.setAttribute("viewBox", `0 0 ${box.width} ${box.height}`);
    svg.setAttribute("width", box.width);
    svg.setAttribute("height", box.height);
    svg.append(arrowHead(arrowId));
    // From the emitting card's edge, level with the topic, to the subscribing card's edge.
    for (const out of element.querySelectorAll(".emits .chip[data-topic]")) {
      for (const into of element.querySelectorAll(`.subscribes .chip[data-topic="${CSS.escape(out.dataset.topic)}"]`)) {
        const a = out.getBoundingClientRect();
        const b = into.getBoundingClientRect();
        const from = out.closest(".step-card").getBoundingClientRect();
        const to = into.closest(".step-card").getBoundingClientRect();
        if (to.left < from.right) continue; // same column: the chips say it
        const x1 = from.right - box.left;
        const y1 = a.top + a.height / 2 - box.top;
        const x2 = to.left - box.left - 2;
        const y2 = b.top + b.height / 2 - box.top;
        const bend = Math.max(30, (x2 - x1) / 2);
        const path = document.createElementNS(SVG, "path");
        path.setAttribute("d", `M ${x1} ${y1} C ${x1 + bend} ${y1}, ${x2 - bend} ${y2}, ${x2} ${y2}`);
        path.setAttribute("marker-end", `url(#${arrowId})`);
        const virtual = out.dataset.virtual === "true" || into.dataset.virtual === "true";
        path.setAttribute("class", ["edge", virtual && "virtual", out.dataset.conditional === "true" && "conditional"].filter(Boolean).join(" "));
        path.dataset.topic = out.dataset.topic;
        svg.append(path);
        // The curve's midpoint: its control points are symmetric about it.
        if (out.dataset.label) svg.append(edgeLabel(out.dataset.label, (x1 + x2) / 2, (y1 + y2) / 2 - 5));
      }
    }
  }
  return { element, draw };
}

function edgeLabel(text, x, y) {
  const label = document.createElementNS(SVG, "text");
  for (const [k, v] of Object.entries({ class: "edge-label", x, y, "text-anchor": "middle" })) label.setAttribute(k, v);
  label.textContent = text;
  return label;
}

function arrowHead(id) {
  const defs = document.createElementNS(SVG, "defs");
  const marker = document.createElementNS(SVG, "marker");
  for (const [k, v] of Object.entries({ id, viewBox: "0 0 10 10", refX: "9", refY: "5",
    markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" })) marker.setAttribute(k, v);
  const tip = document.createElementNS(SVG, "path");
  tip.setAttribute("d", "M 0 0 L 10 5 L 0 10 z");
  marker.append(tip);
  defs.append(marker);
  return defs;
}

function stepCard(step, heard, emitted, hrefFor) {
  const route = step.type === "api"
    ? h("a", { href: hrefFor("endpoints", { step: step.name }), class: "route" },
      chip(step.method, `method ${step.method.toLowerCase()}`), " ", h("code", {}, step.path))
    : null;
  const listens = ins(step);
  const sends = outs(step);
  return h("article", { class: `step-card ${step.type}`, dataset: { step: step.name } },
    h("header", {}, chip(KINDS[step.type] ?? step.type, `kind ${step.type}`), h("strong", {}, step.name)),
    route,
    step.type === "cron" ? h("p", { class: "schedule" }, h("code", { title: "cron schedule (UTC)" }, step.cron)) : null,
    step.type === "noop" ? h("p", { class: "muted noop-note" }, "no handler: a person or an outside system") : null,
    step.description ? h("p", { class: "description" }, step.description) : null,
    listens.length ? h("div", { class: "topics subscribes" }, h("span", { class: "muted" }, "on "),
      listens.map((i) => topicChip(i, emitted.has(i.topic) ? "" : "unsent", "no step emits this topic"))) : null,
    sends.length ? h("div", { class: "topics emits" }, h("span", { class: "muted" }, "emits "),
      sends.map((o) => topicChip(o, heard.has(o.topic) ? "" : "unheard", "no step subscribes to this topic"))) : null,
    queueSettings(step),
    step.type === "cron" ? runNow(step, hrefFor) : null,
    h("p", { class: "file muted" }, step.file));
}

/** A topic chip; `{topic, label?, conditional?, virtual}` ride on its dataset for the edges. */
function topicChip({ topic, label, conditional, virtual }, problem, why) {
  const el = chip(topic, ["topic", problem, virtual && "virtual", conditional && "conditional"].filter(Boolean).join(" "));
  if (label) el.append(h("span", { class: "label" }, label));
  Object.assign(el.dataset, { topic, virtual: String(virtual), conditional: String(Boolean(conditional)) });
  if (label) el.dataset.label = label;
  const notes = [problem && why, virtual && "virtual: drawn, never routed", conditional && "conditional: emitted on some runs only"];
  if (notes.some(Boolean)) el.title = notes.filter(Boolean).join("; ");
  return el;
}
