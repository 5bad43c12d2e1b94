"""The serve flags of `dev`, `start` and `openapi`: each with its `MOTIA_*` variable and the
`Settings` field it sets (`--max-feeds` is `MOTIA_MAX_FEEDS`; `REDIS_URL` works too), and
the Settings a parsed command line describes."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from motia_sse.flag_checks import Origins, Switch, checked, cors_flags, workbench_token
from motia_sse.http.cors import parse_origins
from motia_sse.http.proxy import parse_networks, parse_root_path
from motia_sse.http.send_buffer import parse_send_buffer
from motia_sse.settings import Settings

# (flag, Settings field, type, help); the default is the field's.
OPTIONS: list[tuple[str, str, Any, str]] = [
    ("--port", "port", int, "port to listen on"),
    ("--backlog", "backlog", int, "connections the kernel queues before they are accepted"),
    ("--forwarded-allow-ips", "forwarded_allow_ips", checked(parse_networks),
     "proxies (addresses or networks, comma-separated; * for any peer) whose "
     "X-Forwarded-For / Forwarded name the client and X-Forwarded-Prefix the root path"),
    ("--root-path", "root_path", checked(parse_root_path),
     "path a proxy serves the app under, stripping it (/motia)"),
    ("--steps", "steps_dir", Path, "folder of *_step.py and *_stream.py files"),
    ("--store", "store", str, "where stream items live without Redis: sqlite or memory"),
    ("--data-dir", "data_dir", Path, "folder of the SQLite store and queue"),
    ("--redis", "redis_url", str, "Redis URL: items, cross-process feeds, event queue "
                                  "(also $REDIS_URL; unset: the embedded store)"),
    ("--redis-prefix", "redis_prefix", str, "prefix of every Redis key and channel"),
    ("--max-handlers", "max_concurrent_handlers", int, "event handlers running at once"),
    ("--shutdown-timeout", "shutdown_timeout", float,
     "seconds running handlers get to finish on shutdown"),
    ("--max-attempts", "max_attempts", int, "tries of a failing event handler"),
    ("--retry-backoff", "retry_backoff", float, "seconds before the first retry; doubles"),
    ("--handler-timeout", "handler_timeout", float,
     "seconds an event or cron handler may run before it is cancelled and retried"),
    ("--visibility-timeout", "visibility_timeout", float,
     "Redis: seconds before another process claims a silent process's event"),
    ("--max-subscriptions", "max_subscriptions", int, "subscriptions per multiplexed feed"),
    ("--max-feeds", "max_feeds", int, "feeds open at once; past it, 503"),
    ("--max-feeds-per-client", "max_feeds_per_client", int,
     "feeds open at once from one address; past it, 429"),
    ("--max-id-length", "max_id_length", int, "longest group or item id"),
    ("--max-body-size", "max_body_size", int, "largest request body in bytes; past it, 413"),
    ("--max-header-size", "max_header_size", int, "largest header line in bytes; past it, 400"),
    ("--heartbeat", "heartbeat_interval", float, "seconds between heartbeats on idle feeds"),
    ("--feed-send-buffer", "feed_send_buffer", checked(parse_send_buffer),
     "kernel send buffer per feed, in bytes (or 64k): bounds what a stalled client reads "
     "of stale events; 0 leaves it to the kernel"),
    ("--log-buffer", "log_buffer_size", int, "log records the workbench keeps"),
    ("--log-buffer-bytes", "log_buffer_bytes", int,
     "bytes of log records the workbench keeps; long fields are cut there"),
]


def _shown(default: Any) -> str:
    """A default as --help shows it."""
    if isinstance(default, tuple):
        default = ",".join(map(str, default))
    return "none" if default in ("", None) else str(default)


def _env_name(flag: str) -> str:
    return "MOTIA_" + flag.removeprefix("--").replace("-", "_").upper()


def add_serve_options(sub: argparse.ArgumentParser, host: str,
                      env: Mapping[str, str]) -> None:
    """Add every serve flag to `sub`, defaulting to the environment, then to Settings."""
    defaults = Settings()
    sub.add_argument("--host", default=env.get("MOTIA_HOST", host),
                     help=f"address to bind (default {host}; $MOTIA_HOST)")
    for flag, field, kind, about in OPTIONS:
        default = getattr(defaults, field)
        fallback = env.get("REDIS_URL") if field == "redis_url" else None
        raw = env.get(_env_name(flag), fallback)
        choices = ("sqlite", "memory") if field == "store" else None
        sub.add_argument(flag, dest=field, type=kind, choices=choices,
                         default=raw if raw is not None else default,
                         help=f"{about} (default {_shown(default)}; ${_env_name(flag)})")
    sub.add_argument("--log-format", choices=("text", "json"),
                     default=env.get("MOTIA_LOG_FORMAT", "text"),
                     help="text, or one JSON object per line ($MOTIA_LOG_FORMAT)")
    _add_workbench_options(sub, env)
    _add_cors_options(sub, env)


def _add_cors_options(sub: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    sub.add_argument("--cors-origin", dest="cors_origins", action=Origins,
                     type=checked(parse_origins),
                     default=env.get("MOTIA_CORS_ORIGIN") or (),
                     help="let pages on this origin (scheme://host[:port], or '*' for any) "
                          "call the API and open feeds; repeat it, or separate origins "
                          "with commas (default none: no CORS headers; $MOTIA_CORS_ORIGIN)")
    sub.add_argument("--cors-credentials", action=Switch,
                     default=env.get("MOTIA_CORS_CREDENTIALS", False),
                     help="let those pages send the user's cookies too; needs listed "
                          "origins, not '*' ($MOTIA_CORS_CREDENTIALS=1)")


def _add_workbench_options(sub: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    sub.add_argument("--workbench", action=Switch, default=env.get("MOTIA_WORKBENCH", False),
                     help="start: serve the workbench page, /__motia/* and /openapi.json "
                          "(dev always does; $MOTIA_WORKBENCH=1)")
    sub.add_argument("--workbench-token", type=workbench_token,
                     default=env.get("MOTIA_WORKBENCH_TOKEN"),
                     help="serve the workbench only to requests with this token, as "
                          "'Authorization: Bearer TOKEN' or the cookie its login form sets "
                          "($MOTIA_WORKBENCH_TOKEN)")


def settings_from(args: argparse.Namespace) -> Settings:
    """The Settings the parsed flags describe."""
    values = {field: getattr(args, field) for _, field, _, _ in OPTIONS}
    values["redis_url"] = values["redis_url"] or None
    # dev's watcher runs its server as `start --reload-in-place`.
    dev = args.command == "dev" or getattr(args, "reload_in_place", False)
    values["metrics"] = dev or getattr(args, "metrics", False)
    values["metrics_peers"] = getattr(args, "metrics_peers", None)
    values["cors_origins"], values["cors_credentials"] = cors_flags(args)
    return Settings(host=args.host, dev=dev, workbench=args.workbench,
                    workbench_token=args.workbench_token, **values)
