// Reading the server's introspection endpoints; errors carry the server's own message.

/** A failed request: the server's `{"error", "details"}`, or what went wrong on the way. */
export class ServerError extends Error {
  constructor(message, { status = 0, details = [], url = "" } = {}) {
    super(message);
    this.name = "ServerError";
    this.status = status;
    this.details = details;
    this.url = url;
  }
}

/** GET a JSON document; throws ServerError with the server's error and details. */
export function getJson(url) {
  return requestJson(url, { headers: { Accept: "application/json" }, cache: "no-store" });
}

/** POST `body` as JSON; the answer, or a ServerError as getJson throws. */
export function postJson(url, body) {
  return requestJson(url, { method: "POST", body: JSON.stringify(body),
    headers: { Accept: "application/json", "Content-Type": "application/json" } });
}

async function requestJson(url, init) {
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    throw new ServerError(`cannot reach the server (${url})`, { details: [err.message], url });
  }
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    if (response.ok) throw new ServerError(`${url} did not answer JSON`, { status: response.status, details: [text.slice(0, 200)], url });
  }
  if (!response.ok) {
    const message = body && typeof body.error === "string" ? body.error : `${response.status} ${response.statusText}`;
    const details = body && Array.isArray(body.details) ? body.details : [];
    throw new ServerError(message, { status: response.status, details, url });
  }
  return body;
}

/**
 * `__motia/steps`, `__motia/streams`, a group's items, recent logs, dead letters.
 * Relative to the page, so that they work under a proxy's root path too.
 */
export const introspection = {
  steps: () => getJson("__motia/steps"),
  streams: () => getJson("__motia/streams"),
  group: (stream, group) =>
    getJson(`__motia/streams/${encodeURIComponent(stream)}/groups/${encodeURIComponent(group)}`),
  logs: (filters) => getJson(`__motia/logs?${new URLSearchParams(filters)}`),
  deadLetters: () => getJson("__motia/dead-letters"),
};

/** The workbench's actions (dev, or start --workbench): each answers `{traceId, ...}`. */
export const actions = {
  runCron: (step) => postJson(`__motia/cron/${encodeURIComponent(step)}/run`, {}),
  emit: (topic, data, messageGroupId) =>
    postJson("__motia/emit", { topic, data, message_group_id: messageGroupId || null }),
};

/** The live log feed's URL: `event: log` per record after seq `after`, then each new one. */
export function logFeedUrl(filters, after) {
  return `__motia/logs/feed?${new URLSearchParams({ ...filters, after: String(after) })}`;
}
