// The workbench: loads what the server introspects, then shows one view at a time.

import { introspection } from "./api.js";
import { errorBox, fill, h } from "./dom.js";
import { defaultClient } from "./motia-stream.js";
import { endpointsView } from "./views/endpoints.js";
import { flowsView } from "./views/flows.js";
import { logsView } from "./views/logs.js";
import { streamsView } from "./views/streams.js";

const VIEWS = { endpoints: endpointsView, streams: streamsView, flows: flowsView, logs: logsView };
const main = document.getElementById("view");
const nav = document.getElementById("views");
const mounted = new Map();
let data = null;

/** `#/<view>?<params>`: every view state is a link. */
function hrefFor(view, params = {}) {
  const query = new URLSearchParams(params).toString();
  return `#/${view}${query ? `?${query}` : ""}`;
}

function replaceHash(href) {
  // Record where we are without a history entry per keystroke, and without re-routing.
  history.replaceState(null, "", href);
  markNav(parseHash().view);
}

function parseHash() {
  const match = location.hash.match(/^#\/([\w-]+)(?:\?(.*))?$/);
  const view = match && match[1] in VIEWS ? match[1] : "endpoints";
  return { view, params: new URLSearchParams(match?.[2] ?? "") };
}

function markNav(view) {
  for (const link of nav.querySelectorAll("a")) {
    const current = link.dataset.view === view;
    link.classList.toggle("active", current);
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function route() {
  if (!data) return;
  const { view, params } = parseHash();
  markNav(view);
  if (!mounted.has(view)) {
    const made = VIEWS[view]({ ...data, hrefFor, replaceHash });
    mounted.set(view, made);
    main.append(made.element);
  }
  // Views stay mounted when hidden: their live subscriptions keep running.
  for (const [name, made] of mounted) made.element.hidden = name !== view;
  mounted.get(view).show(params);
  document.title = `${view[0].toUpperCase()}${view.slice(1)} · motia_sse workbench`;
}

function showStatus(status, detail) {
  const pill = document.getElementById("feed-status");
  const count = defaultClient.size;
  const words = {
    idle: "feed idle",
    connecting: "feed connecting…",
    open: `feed live · ${count} subscription${count === 1 ? "" : "s"}`,
    reconnecting: "feed reconnecting…",
    error: "feed error",
  };
  pill.textContent = words[status] ?? status;
  pill.className = `pill feed ${status}`;
  pill.title = detail?.message ? `${detail.message}${detail.details?.length ? `: ${detail.details.join("; ")}` : ""}` : "";
}

async function boot() {
  fill(main, h("p", { class: "muted loading" }, "Loading steps and streams…"));
  try {
    const [steps, streams] = await Promise.all([introspection.steps(), introspection.streams()]);
    data = { steps, streams };
  } catch (err) {
    fill(main, h("section", { class: "card" },
      errorBox(`Cannot load the workbench: ${err.message}`, [...(err.details ?? []), err.url ? `GET ${err.url}` : ""].filter(Boolean)),
      h("button", { type: "button", class: "primary", onclick: boot }, "Try again")));
    return;
  }
  fill(main);
  mounted.clear();
  route();
}

defaultClient.addStatusListener(showStatus);
window.addEventListener("hashchange", route);
boot();
