"""`motia-sse dev|start`: read the settings once, load the steps, serve."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from aiohttp import web

from motia_sse.app import create_app
from motia_sse.backend import BackendUnavailable
from motia_sse.config import ApiRouteConfig, Settings
from motia_sse.exceptions import LoadErrors
from motia_sse.loader import Project, load_project
from motia_sse.logs import setup_logging

log = logging.getLogger("motia_sse")


def _version() -> str:
    try:
        return version("motia_sse")
    except PackageNotFoundError:
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="motia-sse", description=(
        "Serve step files as REST endpoints, event steps and live SSE stream feeds."))
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, host, about in (
        ("dev", "localhost", "serve for development (localhost, text logs)"),
        ("start", "0.0.0.0", "serve for production"),
    ):
        sub = commands.add_parser(name, help=about, description=about)
        sub.add_argument("--host", default=host, help=f"address to bind (default {host})")
        sub.add_argument("--port", type=int, default=3000, help="port (default 3000)")
        sub.add_argument("--steps", type=Path, default=Path("steps"),
                         help="folder of *_step.py and *_stream.py files (default steps/)")
        sub.add_argument("--store", choices=("sqlite", "memory"), default="sqlite",
                         help="where stream items live (default sqlite, under --data-dir)")
        sub.add_argument("--data-dir", type=Path, default=Path(".motia"),
                         help="folder for the SQLite store (default .motia/)")
        sub.add_argument("--redis", metavar="URL", default=os.environ.get("REDIS_URL"),
                         help="Redis for items, cross-process feeds and the event queue "
                              "(default $REDIS_URL; unset: the embedded store)")
        sub.add_argument("--redis-prefix", default="motia",
                         help="prefix of every Redis key and channel (default motia)")
        sub.add_argument("--max-handlers", type=int, default=64,
                         help="event handlers running at once in this process (64)")
        sub.add_argument("--shutdown-timeout", type=float, default=10.0,
                         help="seconds running handlers get to finish on shutdown (10)")
        sub.add_argument("--max-attempts", type=int, default=3,
                         help="tries of a failing event handler before dead-lettering (3)")
        sub.add_argument("--retry-backoff", type=float, default=0.5,
                         help="seconds before the first retry; doubles each time (0.5)")
        sub.add_argument("--visibility-timeout", type=float, default=60.0,
                         help="Redis: seconds before another process claims the event of "
                              "a silent one (60)")
        sub.add_argument("--max-feeds", type=int, default=10_000,
                         help="feeds open at once; past it, 503 (10000)")
        sub.add_argument("--max-feeds-per-client", type=int, default=200,
                         help="feeds open at once from one address; past it, 429 (200)")
        sub.add_argument("--max-body-size", type=int, default=1024 * 1024,
                         help="largest request body in bytes; past it, 413 (1 MiB)")
        sub.add_argument("--max-header-size", type=int, default=8190,
                         help="largest request line or header in bytes; past it, 400 (8190)")
        sub.add_argument("--heartbeat", type=float, default=15.0,
                         help="seconds between heartbeat comments on idle feeds (default 15)")
        sub.add_argument("--log-format", choices=("text", "json"), default="text")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    setup_logging(args.log_format)
    settings = Settings(host=args.host, port=args.port, steps_dir=args.steps, store=args.store,
                        data_dir=args.data_dir, heartbeat_interval=args.heartbeat,
                        redis_url=args.redis or None, redis_prefix=args.redis_prefix,
                        max_attempts=args.max_attempts, retry_backoff=args.retry_backoff,
                        max_concurrent_handlers=args.max_handlers,
                        shutdown_timeout=args.shutdown_timeout,
                        visibility_timeout=args.visibility_timeout, max_feeds=args.max_feeds,
                        max_feeds_per_client=args.max_feeds_per_client,
                        max_body_size=args.max_body_size, max_header_size=args.max_header_size)
    try:
        project = load_project(settings.steps_dir)
    except LoadErrors as exc:
        print(f"motia-sse: cannot load {settings.steps_dir}:", file=sys.stderr)
        for error in exc.errors:
            print(f"  {error}", file=sys.stderr)
        return 1
    _announce(settings, project)
    try:
        web.run_app(create_app(settings, project), host=settings.host, port=settings.port,
                    handler_cancellation=True, print=None, access_log=None,
                    shutdown_timeout=settings.shutdown_timeout,
                    max_line_size=settings.max_header_size,
                    max_field_size=settings.max_header_size)
    except BackendUnavailable as exc:
        print(f"motia-sse: {exc}", file=sys.stderr)
        return 1
    return 0


def _announce(settings: Settings, project: Project) -> None:
    shown = "localhost" if settings.host in ("0.0.0.0", "::") else settings.host
    store = f"redis {settings.redis_url}" if settings.redis_url else settings.store
    log.info("motia-sse %s serving %s on http://%s:%d (store: %s)", _version(),
             settings.steps_dir, shown, settings.port, store)
    for step in project.api_steps:
        assert isinstance(step.config, ApiRouteConfig)
        log.info("  route  %-6s %s  (%s)", step.config.method.upper(), step.config.path, step.name)
    for stream in project.streams:
        log.info("  stream /streams/%s/<group>/<id>", stream.config.name)
    for step in project.event_steps:
        log.info("  event  %s", step.name)
    for step in project.cron_steps:
        log.info("  cron   %s  (%s)", step.name, getattr(step.config, "cron", ""))
