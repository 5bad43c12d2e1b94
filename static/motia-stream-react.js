// motia-stream-react.js: React hooks over motia-stream.js, for pages built with a bundler.
//
//   import { MotiaStreamProvider, useStreamItem, useStreamGroup, useStreamEventHandler }
//     from "./motia-stream-react.js";
//   <MotiaStreamProvider url="https://api.example.com/streams"><App /></MotiaStreamProvider>
//   const { data } = useStreamItem("openai", traceId, "message");
//   const { data: rows, event } = useStreamGroup("todos", "inbox", { sortKey: "createdAt" });
//   useStreamEventHandler({ event, type: "typing", listener: (data) => show(data) }, []);
//
// The names and shapes are those of Motia's @motiadev/stream-client-react (the object form
// `useStreamItem({ streamName, groupId, id })` works too), over SSE instead of a WebSocket.
// Plain JavaScript without JSX, importing "react": any bundler (esbuild, Vite, webpack) takes it.

import { createContext, createElement, useContext, useEffect, useMemo, useState } from "react";
import { MotiaStreamClient, defaultClient, sortItems } from "./motia-stream.js";

const MotiaStreamContext = createContext(null);

/**
 * Shares one client, so one connection, with every hook below it. Props: `url` (the feeds'
 * URL; without it, the module's `defaultClient`, which `subscribeItem` also uses),
 * `withCredentials`, or `client` (a MotiaStreamClient of your own). A client it made for
 * a `url` is closed when the provider goes.
 */
export function MotiaStreamProvider({ url = null, withCredentials = false, client = null, children }) {
  const shared = useMemo(
    () => client ?? (url ? new MotiaStreamClient({ url, withCredentials }) : defaultClient),
    [client, url, withCredentials]);
  useEffect(() => {
    if (shared === client || shared === defaultClient) return undefined; // not ours to close
    // close() only drops the subscriptions: if React mounts the tree again (StrictMode
    // does), the hooks' subscriptions reopen its connection.
    return () => shared.close();
  }, [shared, client]);
  return createElement(MotiaStreamContext.Provider, { value: shared }, children);
}

/** `{ stream }`: the provider's client (the default client outside any provider), as Motia's. */
export function useMotiaStream() {
  return { stream: useContext(MotiaStreamContext) ?? defaultClient };
}

/**
 * One item: `{ data, event, error }`. `data` is the item, null until it is known and when it
 * is absent or deleted; `event` the subscription, for `useStreamEventHandler`; `error` a
 * MotiaStreamError when the server refused the subscription.
 * Takes `(stream, group, id)` or Motia's `({ streamName, groupId, id })`.
 */
export function useStreamItem(...args) {
  const { streamName, groupId, id } = named(args, ["streamName", "groupId", "id"]);
  const { stream: client } = useMotiaStream();
  const [state, setState] = useState(EMPTY_ITEM);
  useEffect(() => {
    if (!streamName || !groupId || !id) return undefined;
    const subscription = client.subscribeItem(streamName, groupId, id,
      (data) => setState((old) => ({ ...old, data, error: null })),
      { onError: (error) => setState((old) => ({ ...old, error })) });
    setState({ ...EMPTY_ITEM, event: subscription });
    return () => {
      subscription.close();
      setState(EMPTY_ITEM);
    };
  }, [client, streamName, groupId, id]);
  return state;
}

/**
 * A group's items: `{ data, event, error }`, `data` an array (empty until the first sync),
 * oldest first or ordered by `sortKey` (a field name, or a function of an item; pass a
 * stable one, from useCallback, or it sorts again at each render).
 * Takes `(stream, group, { sortKey })` or Motia's `({ streamName, groupId, sortKey })`.
 */
export function useStreamGroup(...args) {
  const { streamName, groupId, sortKey = null } = named(args, ["streamName", "groupId"]);
  const { stream: client } = useMotiaStream();
  const [state, setState] = useState(EMPTY_GROUP);
  useEffect(() => {
    if (!streamName || !groupId) return undefined;
    // Sorted here rather than by the client, so a new sortKey orders the same items again
    // without a new subscription.
    const subscription = client.subscribeGroup(streamName, groupId,
      (items) => setState((old) => ({ ...old, items, error: null })),
      { onError: (error) => setState((old) => ({ ...old, error })) });
    setState({ ...EMPTY_GROUP, event: subscription });
    return () => {
      subscription.close();
      setState(EMPTY_GROUP);
    };
  }, [client, streamName, groupId]);
  const data = useMemo(() => sortItems(state.items, sortKey), [state.items, sortKey]);
  return { data, event: state.event, error: state.error };
}

/**
 * Calls `listener(data, event)` for each custom event of `type` that the subscription
 * `event` (from useStreamItem / useStreamGroup) receives; `dependencies` as useEffect's.
 */
export function useStreamEventHandler({ event, type, listener }, dependencies = []) {
  useEffect(() => {
    if (!event) return undefined;
    return event.onEvent(type, listener);
    // eslint-disable-next-line react-hooks/exhaustive-deps -- the caller's dependencies, as Motia's
  }, [event, type, ...dependencies]);
}

const EMPTY_ITEM = Object.freeze({ data: null, event: null, error: null });
const EMPTY_GROUP = Object.freeze({ items: Object.freeze([]), event: null, error: null });

/** Positional arguments, or Motia's one object of named ones, as one object. */
function named(args, names) {
  const [first] = args;
  if (first !== null && typeof first === "object") return first;
  const values = Object.fromEntries(names.map((name, i) => [name, args[i]]));
  return { ...(args[names.length] ?? {}), ...values };
}
