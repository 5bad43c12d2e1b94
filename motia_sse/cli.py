"""`motia-sse`: serve (`dev`, `start`), inspect (`steps`, `openapi`), scaffold (`new`),
send an event to a running server (`emit`).

Settings come from flags, then `MOTIA_*` environment variables, then the defaults of
`Settings` (serve_flags.py; flag_checks.py checks their values); they are read once here
and passed in, never read again by the server.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from errno import EACCES, EADDRINUSE, EADDRNOTAVAIL
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from aiohttp import web

from motia_sse.backend import BackendUnavailable
from motia_sse.commands.emit import add_emit_parser, send_emit
from motia_sse.commands.openapi_file import write_openapi
from motia_sse.exceptions import LoadErrors
from motia_sse.flag_checks import Switch
from motia_sse.http.app import create_app, server_options
from motia_sse.http.workbench_guard import workbench_served
from motia_sse.logs.output import setup_logging
from motia_sse.process.children import CANNOT_SERVE
from motia_sse.process.event_loop import (
    LOOP_KINDS,
    LoopKind,
    LoopUnavailable,
    new_event_loop,
    resolve_loop,
)
from motia_sse.process.in_place_reload import RELOADER, RESTART
from motia_sse.run.config import ApiRouteConfig
from motia_sse.run.loader import Project, check_steps_dir, load_project
from motia_sse.serve_flags import add_serve_options, settings_from
from motia_sse.settings import Settings

log = logging.getLogger("motia_sse")


def _version() -> str:
    try:
        return version("motia_sse")
    except PackageNotFoundError:
        return "unknown"


def _parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="motia-sse", description=(
        "Serve step files as REST endpoints, event steps and live SSE stream feeds."))
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    dev = commands.add_parser("dev", help="serve for development, reloading on changes",
                              description="Serve on localhost; when a file under the "
                                          "steps folder changes, reload the steps in the "
                                          "running server (open feeds stay open), or "
                                          "restart it when they cannot be swapped in.")
    add_serve_options(dev, "localhost", env)
    dev.add_argument("--no-reload", action="store_true", help="do not watch the steps folder")
    _add_loop_option(dev, env)
    start = commands.add_parser("start", help="serve for production",
                                description="Serve, without reloading.")
    add_serve_options(start, "0.0.0.0", env)
    _add_loop_option(start, env)
    start.add_argument("--workers", type=int, default=int(env.get("MOTIA_WORKERS", "1")),
                       help="server processes sharing the port; above 1 needs --redis "
                            "(default 1; $MOTIA_WORKERS)")
    start.add_argument("--metrics", action=Switch, default=env.get("MOTIA_METRICS", False),
                       help="serve /metrics in Prometheus's text format, every worker's "
                            "counts added up (dev always does; $MOTIA_METRICS=1)")
    # Set by --workers for each worker: where the workers find each other's counts.
    start.add_argument("--metrics-peers", type=Path, help=argparse.SUPPRESS)
    start.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    # Set by `dev`'s watcher for its server: reload the steps in place on SIGHUP.
    start.add_argument("--reload-in-place", action="store_true", help=argparse.SUPPRESS)
    steps = commands.add_parser("steps", help="list what a steps folder declares",
                                description="Load the steps folder and list its streams and "
                                            "steps, or its errors.")
    steps.add_argument("--steps", dest="steps_dir", type=Path,
                       default=Path(env.get("MOTIA_STEPS", "steps")))
    new = commands.add_parser("new", help="create a project with the example steps",
                              description="Create NAME/ with steps, a README and a Makefile.")
    new.add_argument("name", type=Path)
    add_emit_parser(commands, env)
    openapi = commands.add_parser(
        "openapi", help="write the OpenAPI document without serving",
        description="Load the steps folder and write the document /openapi.json serves; "
                    "the flags of `start` that change it apply here too.")
    add_serve_options(openapi, "localhost", env)
    openapi.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    return parser


def _add_loop_option(sub: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    sub.add_argument("--loop", choices=LOOP_KINDS, default=env.get("MOTIA_LOOP", "auto"),
                     help="event loop: uvloop if installed (pip install 'motia_sse[speed]'), "
                          "else asyncio's (default auto; $MOTIA_LOOP)")


def parse_settings(argv: Sequence[str], env: Mapping[str, str]) -> Settings:
    """The Settings of a `dev` or `start` command line in an environment."""
    return settings_from(_parser(env).parse_args(argv))


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    env = os.environ if env is None else env
    args = _parser(env).parse_args(argv)
    if args.command == "new":
        from motia_sse.process.scaffold import create_project

        return create_project(args.name)
    if args.command == "steps":
        return _list_steps(args.steps_dir)
    if args.command == "emit":
        return send_emit(args)
    if args.command == "openapi":
        try:
            return write_openapi(settings_from(args), args.output)
        except LoadErrors as exc:
            print_load_errors(args.steps_dir, exc)
            return 1
    setup_logging(args.log_format)
    settings = settings_from(args)
    try:  # before any child starts: each would fail the same way
        resolve_loop(args.loop)
    except LoopUnavailable as exc:
        print(f"motia-sse: {exc}", file=sys.stderr)
        return 1
    given = list(argv if argv is not None else sys.argv[1:])
    if args.command == "dev" and not args.no_reload:
        from motia_sse.process.dev_watcher import serve_with_reload

        try:  # nothing to watch: say so as `start` does
            check_steps_dir(settings.steps_dir)
        except LoadErrors as exc:
            print_load_errors(settings.steps_dir, exc)
            return 1
        return serve_with_reload(settings, given)
    if args.command == "start" and args.workers > 1:
        from motia_sse.process.worker_processes import serve_workers

        return serve_workers(settings, given, args.workers)
    return serve(settings, reuse_port=getattr(args, "reuse_port", False),
                 reloadable=getattr(args, "reload_in_place", False), loop=args.loop)


def serve(settings: Settings, reuse_port: bool = False, reloadable: bool = False,
          loop: LoopKind = "auto") -> int:
    """Load the steps and serve until stopped; 1 if the steps or Redis are not right,
    RESTART if a reload asked for a fresh process. Run by a supervisor (`dev`'s watcher,
    `--workers`), CANNOT_SERVE instead of 1 if the port or Redis is not there."""
    cannot_serve = CANNOT_SERVE if reuse_port or reloadable else 1
    try:
        project = load_project(settings.steps_dir)
    except LoadErrors as exc:
        print_load_errors(settings.steps_dir, exc)
        return 1
    _announce(settings, project, loop)
    app = create_app(settings, project, reloadable)
    try:
        web.run_app(app, host=settings.host, port=settings.port, loop=new_event_loop(loop),
                    print=None, reuse_port=reuse_port or None, backlog=settings.backlog,
                    **server_options(settings))
    except BackendUnavailable as exc:
        print(f"motia-sse: {exc}", file=sys.stderr)
        return cannot_serve
    except OSError as exc:  # binding the port: in use, or not this machine's address
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        print(f"motia-sse: cannot listen on {settings.host}:{settings.port}: {reason}"
              f"{_what_to_do(exc.errno, settings.port)}", file=sys.stderr)
        return cannot_serve
    return RESTART if RELOADER in app and app[RELOADER].restart else 0


def _what_to_do(errno: int | None, port: int) -> str:
    """What the user can do about a port that cannot be listened on."""
    if errno == EADDRINUSE:
        return (f"; another program uses port {port}: stop it, or serve on another port "
                "with --port")
    if errno == EADDRNOTAVAIL:
        return "; --host must be an address of this machine (0.0.0.0 for all of them)"
    if errno == EACCES:
        return "; ports below 1024 need privileges: serve on another port with --port"
    return ""


def print_load_errors(steps_dir: Path, exc: LoadErrors) -> None:
    """One line per problem, each naming its file."""
    print(f"motia-sse: cannot load {steps_dir}:\n{exc.indented()}", file=sys.stderr)


def _list_steps(steps_dir: Path) -> int:
    try:
        project = load_project(steps_dir)
    except LoadErrors as exc:
        print_load_errors(steps_dir, exc)
        return 1
    rows = [("stream", s.config.name, f"/streams/{s.config.name}/<group>/<id>", s.path)
            for s in project.streams]
    for step in project.api_steps:
        assert isinstance(step.config, ApiRouteConfig)
        rows.append(("api", step.name, f"{step.config.method.upper()} {step.config.path}",
                     step.path))
    rows += [("event", s.name, "on " + ", ".join(getattr(s.config, "subscribes", ())), s.path)
             for s in project.event_steps]
    rows += [("cron", s.name, getattr(s.config, "cron", ""), s.path) for s in project.cron_steps]
    rows += [("noop", s.name, "(no handler)", s.path) for s in project.noop_steps]
    width = [max((len(str(r[i])) for r in rows), default=0) for i in range(3)]
    for row in rows:
        kind, name, what, path = row
        print(f"{kind:<{width[0]}}  {name:<{width[1]}}  {what:<{width[2]}}  "
              f"{Path(path).relative_to(project.steps_dir)}")
    for warning in project.warnings:
        print(f"warning: {warning}")
    return 0


def _workbench_state(settings: Settings) -> str:
    if not workbench_served(settings):
        return "off (--workbench serves it, with /__motia/* and /openapi.json)"
    if settings.workbench_token:
        return "on at that URL, guarded by --workbench-token"
    if settings.dev:
        return "on at that URL"
    return ("on at that URL, unguarded: whoever reaches the port reads it "
            "(--workbench-token guards it)")


def _announce(settings: Settings, project: Project, loop: LoopKind) -> None:
    shown = "localhost" if settings.host in ("0.0.0.0", "::") else settings.host
    store = f"redis {settings.redis_url}" if settings.redis_url else settings.store
    log.info("motia-sse %s serving %s on http://%s:%d (store: %s, loop: %s)",
             _version(), settings.steps_dir, shown, settings.port, store, resolve_loop(loop))
    log.info("workbench: %s", _workbench_state(settings))
    if settings.forwarded_allow_ips:
        log.info("client addresses and root path from the forwarding headers of %s",
                 ", ".join(map(str, settings.forwarded_allow_ips)))
    for step in project.api_steps:
        assert isinstance(step.config, ApiRouteConfig)
        log.info("  route  %-6s %s  (%s)", step.config.method.upper(), step.config.path, step.name)
    for stream in project.streams:
        log.info("  stream /streams/%s/<group>/<id>", stream.config.name)
    for step in project.event_steps:
        log.info("  event  %s", step.name)
    for step in project.cron_steps:
        log.info("  cron   %s  (%s)", step.name, getattr(step.config, "cron", ""))
