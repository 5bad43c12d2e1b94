// motia-stream.js: live stream items in the browser, over one multiplexed SSE connection.
//
//   import { subscribeItem, subscribeGroup } from "/static/motia-stream.js";
//   const stop = subscribeItem("openai", traceId, "message", (item) => render(item));
//   const rows = subscribeGroup("progress", groupId, (items) => renderTable(items), { sortKey: "done" });
//   rows.onEvent("progress-note", (data) => toast(data));  // custom events of one type
//   stop();  // unsubscribe (or stop.close())
//
// Every subscription of a client shares ONE EventSource on
// `GET /streams?sub=<stream>/<group>/<id>&sub=<stream>/<group>`. When the set of
// subscriptions changes, the connection is reopened (debounced) with the new set;
// the browser itself reconnects after a network failure, sending Last-Event-ID.
// It asks for delta frames (`delta=1`): a changed item comes as the splice from the exact
// text last received for it, which this client keeps per item (README, "Delta frames").
// No dependencies, no build step: copy this file or load it from the server.

/** An error the server gave for a subscription (HTTP 4xx/5xx `{"error", "details"}`). */
export class MotiaStreamError extends Error {
  constructor(message, { status = 0, details = [], url = "", transient = false } = {}) {
    super(message);
    this.name = "MotiaStreamError";
    this.status = status;
    this.details = details;
    this.url = url;
    // True when retrying later may work (server down, 5xx); false for a refused subscription.
    this.transient = transient;
  }
}

const MAX_BACKOFF_MS = 30000;

function safely(fn, ...args) {
  // One listener that throws must not stop the others from hearing the change.
  try {
    fn(...args);
  } catch (err) {
    console.error("motia-stream: listener failed", err);
  }
}

/** The `sub` value of one subscription: each segment URL-encoded, joined by "/". */
export function subscriptionPath(stream, group, id = null) {
  const parts = id === null || id === undefined ? [stream, group] : [stream, group, id];
  for (const part of parts) {
    if (typeof part !== "string" || part === "") {
      throw new TypeError(`motia-stream: stream, group and id must be non-empty strings, got ${JSON.stringify(part)}`);
    }
  }
  return parts.map(encodeURIComponent).join("/");
}

/**
 * Where the feeds are when no `url` is given: beside this file as the server serves it,
 * `<root>/static/motia-stream.js`, so under a proxy's root path (`/motia/streams`) and
 * on the server's origin when a page elsewhere imports it from there; a copy of this
 * file served under another name uses "/streams" of its page's origin.
 */
export const DEFAULT_URL = new URL(import.meta.url).pathname.endsWith("/static/motia-stream.js")
  ? new URL("../streams", import.meta.url).href
  : "/streams";

/**
 * A set of subscriptions carried by one EventSource.
 *
 * Options: `url` (default `DEFAULT_URL`), `debounceMs` (default 25), `onError(err)` for
 * errors no subscription's own `onError` heard, `onStatus(status, detail)` with status
 * "idle" | "connecting" | "open" | "reconnecting" | "error". `withCredentials` (default
 * false): send the user's cookies to a server on another origin, which must allow it
 * (`--cors-credentials`). `delta` (default true): ask for delta frames.
 */
export class MotiaStreamClient {
  constructor({ url = DEFAULT_URL, debounceMs = 25, onError = null, onStatus = null,
               withCredentials = false, delta = true } = {}) {
    this.url = url;
    this.withCredentials = withCredentials;
    this.delta = delta;
    this.debounceMs = debounceMs;
    this.onError = onError;
    this._statusListeners = new Set(onStatus ? [onStatus] : []);
    this._subs = new Map(); // key -> {key, stream, group, id, listeners, state, failed}
    this._source = null;
    this._sourceKeys = [];
    this._timer = null;
    this._backoffMs = 1000;
    this._lastError = null;
    this.status = "idle";
    this.statusDetail = null;
  }

  /**
   * Follow one item: `onChange(item)` on every snapshot, `onChange(null)` when deleted.
   * Returns a subscription: call it (or its `close()`) to unsubscribe; `onEvent(type, fn)`.
   */
  subscribeItem(stream, group, id, onChange, { onEvent = null, onError = null } = {}) {
    return this._subscribe(stream, group, id, { onChange, onEvent, onError, sortKey: null });
  }

  /**
   * Follow a group: `onChange(items)` with every item after each change, oldest first, or
   * ordered by `sortKey` (a field name, or a function of an item giving its key).
   * Returns a subscription, as `subscribeItem` does.
   */
  subscribeGroup(stream, group, onChange, { sortKey = null, onEvent = null, onError = null } = {}) {
    checkSortKey(sortKey);
    return this._subscribe(stream, group, null, { onChange, onEvent, onError, sortKey });
  }

  /** Call `listener(status, detail)` whenever the connection's status changes. */
  addStatusListener(listener) {
    this._statusListeners.add(listener);
    safely(listener, this.status, this.statusDetail);
    return () => this._statusListeners.delete(listener);
  }

  /** How many distinct streams, groups and items are subscribed. */
  get size() {
    return this._subs.size;
  }

  /** Drop every subscription and close the connection. */
  close() {
    this._subs.clear();
    clearTimeout(this._timer);
    this._closeSource();
    this._setStatus("idle");
  }

  _subscribe(stream, group, id, listener) {
    if (typeof listener.onChange !== "function") {
      throw new TypeError("motia-stream: onChange must be a function");
    }
    const key = subscriptionPath(stream, group, id);
    let sub = this._subs.get(key);
    if (!sub) {
      // text: {text, source}, the item's JSON text as received on that EventSource, which
      // deltas apply to; texts: the same per row, for a group.
      sub = { key, stream, group, id, listeners: new Set(), state: undefined, failed: null,
              text: null, texts: new Map() };
      this._subs.set(key, sub);
      this._schedule();
    } else {
      // Late joiners hear what the others already know, as the others did.
      queueMicrotask(() => {
        if (!sub.listeners.has(listener)) return;
        if (sub.failed && listener.onError) safely(listener.onError, sub.failed);
        else if (sub.state !== undefined) safely(listener.onChange, sortItems(this._value(sub), listener.sortKey));
      });
    }
    listener.handlers = new Map(); // event type -> Set of fn(data, event)
    sub.listeners.add(listener);
    let active = true;
    const subscription = () => {
      if (!active) return;
      active = false;
      sub.listeners.delete(listener);
      if (sub.listeners.size === 0 && this._subs.get(key) === sub) {
        this._subs.delete(key);
        this._schedule();
      }
    };
    // A function, so `const stop = subscribeItem(...); stop()` goes on working, with the
    // methods of Motia's subscription objects on it.
    subscription.close = subscription;
    subscription.onEvent = (type, fn) => onEventOf(listener.handlers, type, fn);
    subscription.offEvent = (type, fn) => listener.handlers.get(type)?.delete(fn);
    return subscription;
  }

  _value(sub) {
    if (sub.id !== null) return sub.state ?? null;
    // A Map keeps insertion order: the sync's order (oldest first, as the server lists a
    // group), each create appended, an update in its place, as get_group has them.
    return [...(sub.state ?? new Map()).values()];
  }

  _schedule(delay = this.debounceMs) {
    clearTimeout(this._timer);
    this._timer = setTimeout(() => this._open(), delay);
  }

  _wanted() {
    return [...this._subs.values()].filter((s) => !s.failed).map((s) => s.key).sort();
  }

  _urlFor(keys) {
    const params = new URLSearchParams();
    if (this.delta) params.append("delta", "1");
    for (const key of keys) params.append("sub", key);
    return `${this.url}${this.url.includes("?") ? "&" : "?"}${params}`;
  }

  _open(force = false) {
    const keys = this._wanted();
    const same = keys.length === this._sourceKeys.length && keys.every((k, i) => k === this._sourceKeys[i]);
    if (same && this._source && this._source.readyState !== EventSource.CLOSED && !force) return;
    this._closeSource();
    if (keys.length === 0) {
      // Nothing left to carry: idle, or in error if every subscription was refused.
      this._setStatus(this._subs.size ? "error" : "idle", this._subs.size ? this._lastError : null);
      return;
    }
    const url = this._urlFor(keys);
    const source = new EventSource(url, { withCredentials: this.withCredentials });
    this._source = source;
    this._sourceKeys = keys;
    this._setStatus("connecting");
    source.onopen = () => {
      if (source !== this._source) return;
      this._backoffMs = 1000;
      this._setStatus("open");
    };
    source.onerror = () => {
      if (source !== this._source) return;
      if (source.readyState === EventSource.CLOSED) {
        // The server refused the request (not a dropped connection, which the browser
        // retries by itself). EventSource cannot read why; ask once with fetch.
        this._diagnose(source, url, keys);
      } else {
        this._setStatus("reconnecting");
      }
    };
    const on = (type, handle) => source.addEventListener(type, (event) => {
      if (source !== this._source) return;
      let data;
      try {
        data = parseFrame(event.data);
      } catch (err) {
        console.warn(`motia-stream: ignored ${type} event that is not JSON`, event.data);
        return;
      }
      handle(data);
    });
    on("item", (d) => this._item(d));
    on("item-delete", (d) => this._item({ ...d, data: null }));
    on("item-delta", (d) => this._itemDelta(d));
    on("sync", (d) => this._sync(d));
    on("create", (d) => this._upsert(d));
    on("update", (d) => this._upsert(d));
    on("update-delta", (d) => this._upsertDelta(d));
    on("delete", (d) => this._remove(d));
    on("event", (d) => this._custom(d));
  }

  _closeSource() {
    if (this._source) this._source.close();
    this._source = null;
    this._sourceKeys = [];
  }

  _item({ stream, group, id, data, text = null }) {
    const sub = this._subs.get(subscriptionPath(stream, group, id));
    if (!sub) return;
    const same = text !== null && sub.text !== null ? text === sub.text.text
      : sub.state !== undefined && JSON.stringify(sub.state) === JSON.stringify(data);
    sub.text = text === null ? null : { text, source: this._source };
    if (same) return; // a reopen resends it
    sub.state = data;
    this._notify(sub);
  }

  _itemDelta(delta) {
    const sub = this._subs.get(subscriptionPath(delta.stream, delta.group, delta.id));
    if (!sub) return;
    const patched = this._patched(sub.text, delta, sub.key);
    if (patched) this._item({ ...delta, ...patched });
  }

  _sync({ stream, group, items }) {
    const sub = this._subs.get(subscriptionPath(stream, group));
    if (!sub) return;
    sub.state = new Map((items ?? []).map((item) => [item.id, item]));
    sub.texts.clear(); // a sync carries no texts: the rows' next changes come whole
    this._notify(sub);
  }

  _upsert({ stream, group, id, data, text = null }) {
    const sub = this._subs.get(subscriptionPath(stream, group));
    if (!sub) return;
    if (text === null) sub.texts.delete(id);
    else sub.texts.set(id, { text, source: this._source });
    sub.state ??= new Map();
    sub.state.set(id, { ...data, id });
    this._notify(sub);
  }

  _upsertDelta(delta) {
    const sub = this._subs.get(subscriptionPath(delta.stream, delta.group));
    if (!sub) return;
    const patched = this._patched(sub.texts.get(delta.id), delta, `${sub.key} row ${delta.id}`);
    if (patched) this._upsert({ ...delta, ...patched });
  }

  _remove({ stream, group, id }) {
    const sub = this._subs.get(subscriptionPath(stream, group));
    if (!sub) return;
    sub.texts.delete(id);
    if (!sub.state?.delete(id)) return;
    this._notify(sub);
  }

  /** `{text, data}`: what `delta` makes of `held`; null (and a fresh connection) if it cannot apply. */
  _patched(held, delta, what) {
    // The server sends a delta only against the text it last sent this connection, so
    // this is a broken promise, not a race: start over from snapshots rather than guess.
    if (!held || held.source !== this._source) return this._resync(`a delta for ${what} without its text`);
    const text = applyDelta(held.text, delta);
    try {
      return { text, data: JSON.parse(text) };
    } catch {
      return this._resync(`a delta for ${what} made text that is not JSON`);
    }
  }

  _resync(why) {
    console.warn(`motia-stream: ${why}; reconnecting for fresh snapshots`);
    this._closeSource();
    this._setStatus("reconnecting");
    this._schedule(this._backoffMs);
    this._backoffMs = Math.min(this._backoffMs * 2, MAX_BACKOFF_MS);
    return null;
  }

  _custom({ stream, group, id, type, data }) {
    // As the server routes it (and Motia): an event for one item reaches that item's
    // subscription and its group's; one for a whole group (id null), the group's only.
    const targets = [];
    for (const sub of this._subs.values()) {
      if (sub.stream !== stream || sub.group !== group) continue;
      if (sub.id === null || sub.id === (id ?? null)) targets.push(sub);
    }
    const event = { stream, group, id: id ?? null, type, data };
    for (const sub of targets) {
      for (const listener of [...sub.listeners]) {
        if (listener.onEvent) safely(listener.onEvent, event);
        for (const fn of [...(listener.handlers.get(type) ?? [])]) safely(fn, data, event);
      }
    }
  }

  _notify(sub) {
    const value = this._value(sub);
    for (const listener of [...sub.listeners]) safely(listener.onChange, sortItems(value, listener.sortKey));
  }

  async _diagnose(source, url, keys) {
    this._setStatus("connecting");
    const answer = await probe(url, this.withCredentials);
    if (source !== this._source) return; // the subscriptions changed meanwhile
    if (answer.ok || answer.error.transient) {
      // Answered now (whatever it was has passed) or down for now: try again, later each time.
      if (!answer.ok) {
        this._lastError = answer.error;
        this._broadcastError(keys, answer.error);
        this._setStatus("error", answer.error);
      }
      this._schedule(this._backoffMs);
      this._backoffMs = Math.min(this._backoffMs * 2, MAX_BACKOFF_MS);
      return;
    }
    // A refusal: find which subscriptions the server refuses, and carry on without them.
    let refused = keys.length === 1 ? [[keys[0], answer.error]] : [];
    if (keys.length > 1) {
      const answers = await Promise.all(keys.map((k) => probe(this._urlFor([k]), this.withCredentials)));
      if (source !== this._source) return;
      refused = keys.map((k, i) => [k, answers[i].error]).filter(([, e]) => e && !e.transient);
      if (refused.length === 0) refused = keys.map((k) => [k, answer.error]); // refused together
    }
    this._lastError = answer.error;
    for (const [key, error] of refused) this._fail(key, error);
    this._open(true);
  }

  _fail(key, error) {
    const sub = this._subs.get(key);
    if (!sub) return;
    sub.failed = error;
    this._broadcastError([key], error);
  }

  _broadcastError(keys, error) {
    let heard = false;
    for (const key of keys) {
      for (const listener of this._subs.get(key)?.listeners ?? []) {
        if (listener.onError) {
          heard = true;
          safely(listener.onError, error);
        }
      }
    }
    if (!heard && this.onError) safely(this.onError, error);
    else if (!heard) console.error("motia-stream:", error.message, error.details);
  }

  _setStatus(status, detail = null) {
    this.status = status;
    this.statusDetail = detail;
    for (const listener of this._statusListeners) safely(listener, status, detail);
  }
}

/**
 * An event's data: one JSON value, or (a delta feed's item, create and update) a JSON
 * header, a newline and the item's text, given as `data` (parsed) and `text` (verbatim).
 */
function parseFrame(raw) {
  const newline = raw.indexOf("\n");
  if (newline === -1) return JSON.parse(raw);
  const text = raw.slice(newline + 1);
  return { ...JSON.parse(raw.slice(0, newline)), data: JSON.parse(text), text };
}

/**
 * The text a delta makes of `text`: its first `prefix` and last `suffix` UTF-16 code units
 * (JavaScript's string indices, as the server counts them) with `insert` between.
 */
export function applyDelta(text, { prefix, suffix, insert }) {
  return text.slice(0, prefix) + insert + text.slice(text.length - suffix);
}

/** Register `fn(data, event)` for custom events of `type`; returns the function that removes it. */
function onEventOf(handlers, type, fn) {
  if (typeof type !== "string" || typeof fn !== "function") {
    throw new TypeError("motia-stream: onEvent(type, fn) takes an event type (a string) and a function");
  }
  if (!handlers.has(type)) handlers.set(type, new Set());
  handlers.get(type).add(fn);
  return () => handlers.get(type)?.delete(fn);
}

function checkSortKey(sortKey) {
  if (sortKey === null || sortKey === undefined || typeof sortKey === "string" || typeof sortKey === "function") return;
  throw new TypeError(`motia-stream: sortKey must be a field name or a function of an item, got ${JSON.stringify(sortKey)}`);
}

/**
 * `items` ordered by `sortKey` (a field name, or a function of an item giving its key), or
 * as they are when there is none. Numbers compare as numbers, anything else as text
 * (`localeCompare`, as Motia's client); items without a key come last; ties keep their
 * order (oldest first). Returns a new array.
 */
export function sortItems(items, sortKey = null) {
  if (sortKey === null || sortKey === undefined) return items;
  checkSortKey(sortKey);
  const keyOf = typeof sortKey === "function" ? sortKey : (item) => item?.[sortKey];
  return items.map((item) => [keyOf(item), item]).sort(([a], [b]) => compareKeys(a, b)).map(([, item]) => item);
}

function compareKeys(a, b) {
  const aMissing = a === null || a === undefined;
  const bMissing = b === null || b === undefined;
  if (aMissing || bMissing) return Number(aMissing) - Number(bMissing);
  if (typeof a === "number" && typeof b === "number") return a < b ? -1 : a > b ? 1 : 0;
  return String(a).localeCompare(String(b));
}

/** Fetch a feed URL once to learn why it was refused: `{ok: true}` or `{ok: false, error}`. */
async function probe(url, withCredentials) {
  const abort = new AbortController();
  let response;
  try {
    response = await fetch(url, {
      headers: { Accept: "text/event-stream" }, signal: abort.signal, cache: "no-store",
      credentials: withCredentials ? "include" : "same-origin",
    });
  } catch (err) {
    return { ok: false, error: new MotiaStreamError(`cannot reach ${url}: ${err.message}`, { url, transient: true }) };
  }
  const type = response.headers.get("Content-Type") ?? "";
  if (response.ok && type.startsWith("text/event-stream")) {
    abort.abort(); // a feed never ends by itself
    return { ok: true };
  }
  if (response.ok) {
    abort.abort();
    const error = `expected text/event-stream from ${url}, got ${response.status} ${type || "no content type"}`;
    return { ok: false, error: new MotiaStreamError(error, { status: response.status, url }) };
  }
  let message = `${response.status} ${response.statusText}`.trim();
  let details = [];
  try {
    const body = await response.json();
    if (body && typeof body.error === "string") message = body.error;
    if (body && Array.isArray(body.details)) details = body.details;
  } catch {
    // Not the server's JSON (a proxy's page, say): the status line says enough.
  }
  const transient = response.status >= 500 || response.status === 429 || response.status === 408;
  return { ok: false, error: new MotiaStreamError(message, { status: response.status, details, url, transient }) };
}

/** The client the module-level functions use. */
export const defaultClient = new MotiaStreamClient();

/** Follow one item on the shared connection; returns the unsubscribe function. */
export function subscribeItem(stream, group, id, onChange, options = {}) {
  return defaultClient.subscribeItem(stream, group, id, onChange, options);
}

/** Follow a group on the shared connection; returns the unsubscribe function. */
export function subscribeGroup(stream, group, onChange, options = {}) {
  return defaultClient.subscribeGroup(stream, group, onChange, options);
}
