"""`motia-sse`: serve (`dev`, `start`), inspect (`steps`, `openapi`), scaffold (`new`),
send an event to a running server (`emit`).

Settings come from flags, then `MOTIA_*` environment variables (`--max-feeds` is
`MOTIA_MAX_FEEDS`; `REDIS_URL` works too), then the defaults of `Settings`; they are
read once here and passed in, never read again by the server.

Over 300 lines, for now: it holds the table of every serve flag and the checks of the
production ones (origins, networks, token, root path). Those checks are next to move
into a module of their own, beside settings.py.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from errno import EACCES, EADDRINUSE, EADDRNOTAVAIL
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from aiohttp import web

from motia_sse.backend import BackendUnavailable
from motia_sse.commands.emit import add_emit_parser, send_emit
from motia_sse.commands.openapi_file import write_openapi
from motia_sse.exceptions import LoadErrors
from motia_sse.http.app import create_app, server_options
from motia_sse.http.cors import check_cors, parse_origins
from motia_sse.http.proxy import parse_networks, parse_root_path
from motia_sse.http.workbench_guard import workbench_served
from motia_sse.logs.output import setup_logging
from motia_sse.process.children import CANNOT_SERVE
from motia_sse.process.in_place_reload import RELOADER, RESTART
from motia_sse.run.config import ApiRouteConfig
from motia_sse.run.loader import Project, check_steps_dir, load_project
from motia_sse.settings import Settings

log = logging.getLogger("motia_sse")


def _checked(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type of a parser whose ValueError says what is wrong: one line."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


# (flag, Settings field, type, help); the default is the field's.
OPTIONS: list[tuple[str, str, Any, str]] = [
    ("--port", "port", int, "port to listen on"),
    ("--backlog", "backlog", int, "connections the kernel queues before they are accepted"),
    ("--forwarded-allow-ips", "forwarded_allow_ips", _checked(parse_networks),
     "proxies (addresses or networks, comma-separated; * for any peer) whose "
     "X-Forwarded-For / Forwarded name the client and X-Forwarded-Prefix the root path"),
    ("--root-path", "root_path", _checked(parse_root_path),
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
    ("--log-buffer", "log_buffer_size", int, "log records the workbench keeps"),
    ("--log-buffer-bytes", "log_buffer_bytes", int,
     "bytes of log records the workbench keeps; long fields are cut there"),
]


def _version() -> str:
    try:
        return version("motia_sse")
    except PackageNotFoundError:
        return "unknown"


def _shown(default: Any) -> str:
    """A default as --help shows it."""
    if isinstance(default, tuple):
        default = ",".join(map(str, default))
    return "none" if default in ("", None) else str(default)


def _env_name(flag: str) -> str:
    return "MOTIA_" + flag.removeprefix("--").replace("-", "_").upper()


def _add_serve_options(sub: argparse.ArgumentParser, host: str,
                       env: Mapping[str, str]) -> None:
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
    sub.add_argument("--cors-origin", dest="cors_origins", action=_Origins,
                     type=_checked(parse_origins),
                     default=env.get("MOTIA_CORS_ORIGIN") or (),
                     help="let pages on this origin (scheme://host[:port], or '*' for any) "
                          "call the API and open feeds; repeat it, or separate origins "
                          "with commas (default none: no CORS headers; $MOTIA_CORS_ORIGIN)")
    sub.add_argument("--cors-credentials", action=_Switch,
                     default=env.get("MOTIA_CORS_CREDENTIALS", False),
                     help="let those pages send the user's cookies too; needs listed "
                          "origins, not '*' ($MOTIA_CORS_CREDENTIALS=1)")


class _Origins(argparse.Action):
    """`--cors-origin`, repeatable; the flags given replace $MOTIA_CORS_ORIGIN's list."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        given = getattr(namespace, self.dest)
        setattr(namespace, self.dest, (*(() if given is self.default else given), *values))


def _add_workbench_options(sub: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    sub.add_argument("--workbench", action=_Switch, default=env.get("MOTIA_WORKBENCH", False),
                     help="start: serve the workbench page, /__motia/* and /openapi.json "
                          "(dev always does; $MOTIA_WORKBENCH=1)")
    sub.add_argument("--workbench-token", type=_workbench_token,
                     default=env.get("MOTIA_WORKBENCH_TOKEN"),
                     help="serve the workbench only to requests with this token, as "
                          "'Authorization: Bearer TOKEN' or the cookie its login form sets "
                          "($MOTIA_WORKBENCH_TOKEN)")


class _Switch(argparse.Action):
    """A flag without a value, whose default may come from the environment as 1 or 0."""

    def __init__(self, option_strings: list[str], dest: str, default: Any = False,
                 help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=default, type=_switch,
                         help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        setattr(namespace, self.dest, True)


def _switch(raw: str) -> bool:
    # argparse converts a string default (the environment's value) with this.
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("", "0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(
        f"expected 1 or 0 (or true, false) from the environment, got {raw!r}")


# What a cookie value may hold unquoted (RFC 6265 cookie-octet): no space, '"', ',',
# ';' or '\'; printable ASCII, so a header carries it too.
_TOKEN_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F)) - set('",;\\')
MIN_TOKEN_LENGTH = 16


def _workbench_token(raw: str) -> str:
    bad = sorted({c for c in raw if c not in _TOKEN_CHARS})
    if bad:
        raise argparse.ArgumentTypeError(
            f"may not hold {', '.join(repr(c) for c in bad)}: use printable ASCII without "
            "spaces, quotes, commas, semicolons or backslashes")
    if len(raw) < MIN_TOKEN_LENGTH:
        raise argparse.ArgumentTypeError(
            f"expected at least {MIN_TOKEN_LENGTH} characters, got {len(raw)}; make one "
            "with: python -c 'import secrets; print(secrets.token_urlsafe(32))'")
    return raw


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
    _add_serve_options(dev, "localhost", env)
    dev.add_argument("--no-reload", action="store_true", help="do not watch the steps folder")
    start = commands.add_parser("start", help="serve for production",
                                description="Serve, without reloading.")
    _add_serve_options(start, "0.0.0.0", env)
    start.add_argument("--workers", type=int, default=int(env.get("MOTIA_WORKERS", "1")),
                       help="server processes sharing the port; above 1 needs --redis "
                            "(default 1; $MOTIA_WORKERS)")
    start.add_argument("--metrics", action=_Switch, default=env.get("MOTIA_METRICS", False),
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
    _add_serve_options(openapi, "localhost", env)
    openapi.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    return parser


def parse_settings(argv: Sequence[str], env: Mapping[str, str]) -> Settings:
    """The Settings of a `dev` or `start` command line in an environment."""
    return settings_from(_parser(env).parse_args(argv))


def settings_from(args: argparse.Namespace) -> Settings:
    """The Settings the parsed flags describe."""
    values = {field: getattr(args, field) for _, field, _, _ in OPTIONS}
    values["redis_url"] = values["redis_url"] or None
    # dev's watcher runs its server as `start --reload-in-place`.
    dev = args.command == "dev" or getattr(args, "reload_in_place", False)
    values["metrics"] = dev or getattr(args, "metrics", False)
    values["metrics_peers"] = getattr(args, "metrics_peers", None)
    values["cors_origins"], values["cors_credentials"] = _cors(args)
    return Settings(host=args.host, dev=dev, workbench=args.workbench,
                    workbench_token=args.workbench_token, **values)


def _cors(args: argparse.Namespace) -> tuple[tuple[str, ...], bool]:
    try:
        check_cors(args.cors_origins, args.cors_credentials)
    except ValueError as exc:  # two flags that do not go together: one line, no usage
        raise SystemExit(f"motia-sse: {exc}") from None
    return args.cors_origins, args.cors_credentials


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
                 reloadable=getattr(args, "reload_in_place", False))


def serve(settings: Settings, reuse_port: bool = False, reloadable: bool = False) -> int:
    """Load the steps and serve until stopped; 1 if the steps or Redis are not right,
    RESTART if a reload asked for a fresh process. Run by a supervisor (`dev`'s watcher,
    `--workers`), CANNOT_SERVE instead of 1 if the port or Redis is not there."""
    cannot_serve = CANNOT_SERVE if reuse_port or reloadable else 1
    try:
        project = load_project(settings.steps_dir)
    except LoadErrors as exc:
        print_load_errors(settings.steps_dir, exc)
        return 1
    _announce(settings, project)
    app = create_app(settings, project, reloadable)
    try:
        web.run_app(app, host=settings.host, port=settings.port,
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


def _announce(settings: Settings, project: Project) -> None:
    shown = "localhost" if settings.host in ("0.0.0.0", "::") else settings.host
    store = f"redis {settings.redis_url}" if settings.redis_url else settings.store
    log.info("motia-sse %s serving %s on http://%s:%d (store: %s)",
             _version(), settings.steps_dir, shown, settings.port, store)
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
