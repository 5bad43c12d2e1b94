"""The server's settings: read once (flags, environment, defaults), then passed in."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Literal

import attrs

StoreKind = Literal["sqlite", "memory"]


@attrs.frozen
class Settings:
    """Everything the server is told at start-up; read once, then passed in."""

    host: str = "127.0.0.1"
    port: int = 3000
    # Connections the kernel queues before they are accepted: a reconnect storm (a deploy,
    # a network blip) meets no dropped SYNs. aiohttp's own default is 128.
    backlog: int = 2048
    # Behind a proxy: the peers (addresses or networks) whose X-Forwarded-For / Forwarded
    # name the client (for per-client limits and logs) and whose X-Forwarded-Prefix
    # names the root path. From any other peer those headers are ignored.
    forwarded_allow_ips: tuple[IPv4Network | IPv6Network, ...] = ()
    # The path a proxy serves the app under ("/motia"; it strips it before passing the
    # request on): the base of /openapi.json's `servers`.
    root_path: str = ""
    # `motia-sse dev`: for the person writing the steps (a failing step's answer names
    # its file and line); `start` faces the internet and tells less.
    dev: bool = False
    # The workbench page, `/__motia/*` and `/openapi.json`: `dev` serves them always,
    # `start` only when asked (they show handler data and the API's shape).
    workbench: bool = False
    # If set, they answer only requests that present it: `Authorization: Bearer ...`,
    # or the cookie the page's login form sets.
    workbench_token: str | None = None
    steps_dir: Path = Path("steps")
    store: StoreKind = "sqlite"
    data_dir: Path = Path(".motia")
    # Seconds between heartbeat comments on idle feeds.
    heartbeat_interval: float = 15.0
    # Subscriptions one multiplexed feed may carry.
    max_subscriptions: int = 100
    # Feeds open at once: in all (past it, 503), and from one client address (429).
    max_feeds: int = 10_000
    max_feeds_per_client: int = 200
    # Longest group or item id, in characters.
    max_id_length: int = 256
    # Largest request body, in bytes (413 past it).
    max_body_size: int = 1024 * 1024
    # Largest request line or header field, in bytes (400 past it).
    max_header_size: int = 8190
    # Bytes of kernel send buffer per feed socket (SO_SNDBUF; Linux doubles it): what a
    # stalled client may still read of stale events before the newest state. 0: the
    # kernel's auto-tuning (megabytes on a fast link). BENCHMARKS.md, "Bounded lag".
    feed_send_buffer: int = 64 * 1024
    # Milliseconds a browser waits before reconnecting, sent once per feed.
    retry_ms: int = 2000
    # Event-step handlers allowed to run at once.
    max_concurrent_handlers: int = 64
    # Seconds shutdown waits for running handlers before cancelling them.
    shutdown_timeout: float = 10.0
    # Tries of a failing event handler before its event is dead-lettered.
    max_attempts: int = 3
    # Seconds before the first retry of a failed event; doubles with each attempt.
    retry_backoff: float = 0.5
    # Seconds an event or cron handler may run before it is cancelled (and, for an
    # event, retried); None: no limit. A step's own `timeout` wins.
    handler_timeout: float | None = None
    # Redis queue: seconds an event may stay with a silent process before another
    # process claims it. Keep it above your slowest handler's run time.
    visibility_timeout: float = 60.0
    static_dir: Path | None = None
    # Log records the workbench keeps (per process) for /__motia/logs: at most this
    # many, and this many bytes of their JSON (each long message or field cut short).
    log_buffer_size: int = 5000
    log_buffer_bytes: int = 4 * 1024 * 1024
    # Redis for items, feeds across processes and the event queue; None: embedded.
    redis_url: str | None = None
    # Prefix of every Redis key and channel, so that apps can share one Redis.
    redis_prefix: str = "motia"
    # Origins whose pages may call the API and open feeds ("https://app.example.com",
    # or "*" for any); empty, no CORS header at all. `cors_credentials`: with the
    # user's cookies too (never with "*").
    cors_origins: tuple[str, ...] = ()
    cors_credentials: bool = False
    # `/metrics` in Prometheus's text format: `dev` serves it always, `start` when asked.
    # Off, nothing is added to the API or event paths (the feeds' counts cost nothing
    # per frame either way: see streams/feed.py).
    metrics: bool = False
    # `start --workers N` with metrics: a folder where each worker listens on a Unix
    # socket, so that the worker a scrape reaches adds up every worker's counts.
    metrics_peers: Path | None = None
