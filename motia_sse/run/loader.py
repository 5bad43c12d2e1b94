"""Load a project: its step and stream files imported, and what they declare checked."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import attrs
from croniter import croniter

from motia_sse.exceptions import LoadError, LoadErrors
from motia_sse.run.config import (
    ApiRouteConfig,
    CronConfig,
    EventConfig,
    NoopConfig,
    StepConfig,
    StreamConfig,
    topics,
)
from motia_sse.run.middleware import (
    PROJECT_FILE,
    Middleware,
    check_middleware,
    project_middleware,
)
from motia_sse.run.route_paths import PARAM, BadPath, route_template
from motia_sse.run.signatures import accepts, parameter_names
from motia_sse.run.signatures import describe_found as _describe
from motia_sse.run.step_files import find_files, fresh_module_names, import_file
from motia_sse.streams.ids import is_stream_name

log = logging.getLogger(__name__)

Handler = Callable[[Any, Any], Awaitable[Any]]
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# Paths the server itself serves; a step may not take them.
RESERVED_PREFIXES = ("/streams", "/__motia", "/openapi.json")
T = TypeVar("T")


@attrs.frozen
class LoadedStep:
    """A step's config and handler, and the file they came from."""

    config: StepConfig
    handler: Handler
    path: Path
    # Where a failure's line is looked for: middleware.py or a helper module the step
    # imports may raise from outside the step's own folder.
    steps_dir: Path
    # An API step's middleware as it runs: the project's (middleware.py), then its own.
    middleware: tuple[Middleware, ...] = ()

    @property
    def name(self) -> str:
        """The step's name."""
        return self.config.name


@attrs.frozen
class LoadedNoop:
    """A noop step's config (it has no handler) and the file it came from."""

    config: NoopConfig
    path: Path

    @property
    def name(self) -> str:
        """The step's name."""
        return self.config.name


@attrs.frozen
class LoadedStream:
    """A stream's config and the file it came from."""

    config: StreamConfig
    path: Path


@attrs.frozen
class Project:
    """Everything a steps folder declares, checked."""

    steps_dir: Path
    api_steps: list[LoadedStep]
    event_steps: list[LoadedStep]
    streams: list[LoadedStream]
    warnings: list[str]
    # From `stream_auth.py`: the request -> auth context hook, if the project has one.
    authenticate: Callable[..., Any] | None = None
    cron_steps: list[LoadedStep] = attrs.field(factory=list)
    noop_steps: list[LoadedNoop] = attrs.field(factory=list)

    def subscribers(self, topic: str) -> list[LoadedStep]:
        """Event steps subscribed to `topic`."""
        return [s for s in self.event_steps
                if isinstance(s.config, EventConfig) and topic in s.config.subscribes]


def check_steps_dir(steps_dir: Path) -> None:
    """Raise LoadErrors, saying what to do, if `steps_dir` is no folder."""
    if not steps_dir.is_dir():
        raise LoadErrors([LoadError(steps_dir.resolve(), (
            "steps folder not found; name yours with --steps DIR, or make a project "
            "with `motia-sse new NAME`"))])


def load_project(steps_dir: Path) -> Project:
    """Import every `*_stream.py` and `*_step.py` under `steps_dir`; raise LoadErrors."""
    steps_dir = steps_dir.resolve()
    check_steps_dir(steps_dir)
    stream_files = find_files(steps_dir, "*_stream.py")
    step_files = find_files(steps_dir, "*_step.py")
    auth_files = find_files(steps_dir, "stream_auth.py")
    # At the top only: a middleware.py in a subfolder is one feature's helper module.
    shared_files = [steps_dir / PROJECT_FILE] if (steps_dir / PROJECT_FILE).is_file() else []
    names = fresh_module_names(steps_dir, stream_files + step_files + auth_files
                               + shared_files)
    errors: list[LoadError] = []
    shared = _load_each(shared_files, names, project_middleware, errors)
    streams = _load_each(stream_files, names, _load_stream, errors)
    steps = _load_each(step_files, names, partial(_load_step, steps_dir=steps_dir), errors)
    hooks = _load_each(auth_files, names, partial(_load_auth, all_files=auth_files), errors)
    errors += _check_unique_streams(streams) + _check_unique_steps(steps)
    if errors:
        raise LoadErrors(errors)
    steps = [_with_middleware(step, shared[0] if shared else ()) for step in steps]
    # _load_auth refuses a second stream_auth.py, so there is one hook at the most.
    return _project(steps_dir, steps, streams, hooks[0] if hooks else None)


def _load_each(files: list[Path], names: dict[Path, str],
               load: Callable[[Path, ModuleType], T], errors: list[LoadError]) -> list[T]:
    """`load` of each file, imported in order; a file that fails adds its error instead."""
    loaded = []
    for path in files:
        try:
            loaded.append(load(path, import_file(path, names[path])))
        except LoadError as exc:
            errors.append(exc)
    return loaded


def _project(steps_dir: Path, steps: list[LoadedStep | LoadedNoop],
             streams: list[LoadedStream],
             authenticate: Callable[..., Any] | None) -> Project:
    """The project these checked files make; its warnings logged."""
    project = Project(
        steps_dir=steps_dir,
        api_steps=[s for s in steps if isinstance(s.config, ApiRouteConfig)],
        event_steps=[s for s in steps if isinstance(s.config, EventConfig)],
        cron_steps=[s for s in steps if isinstance(s.config, CronConfig)],
        noop_steps=[s for s in steps if isinstance(s, LoadedNoop)],
        streams=streams,
        warnings=_unheard_topics(steps),
        authenticate=authenticate,
    )
    for warning in project.warnings:
        log.warning(warning)
    return project


def _load_stream(path: Path, module: ModuleType) -> LoadedStream:
    config = getattr(module, "config", None)
    if not isinstance(config, StreamConfig):
        raise LoadError(path, f"expected `config = StreamConfig(...)`, found {_describe(config)}")
    if not is_stream_name(config.name):
        raise LoadError(path, f"stream name {config.name!r} must be a Python identifier "
                              "not starting with '__' (it becomes ctx.streams.<name>)")
    if config.can_access is not None and not callable(config.can_access):
        raise LoadError(path, "can_access must be a function (subscription, auth_context) "
                              f"-> bool, found {_describe(config.can_access)}")
    if not isinstance(config.schema, type):
        raise LoadError(path, f"stream schema must be a class, found {_describe(config.schema)}")
    if config.base_config.storage_type == "custom" and config.base_config.factory is None:
        raise LoadError(path, 'storage_type="custom" needs base_config.factory, '
                              "a callable returning the stream's store")
    return LoadedStream(config, path)


def _load_auth(path: Path, module: ModuleType, all_files: list[Path]) -> Callable[..., Any]:
    if len(all_files) > 1:
        raise LoadError(path, "only one stream_auth.py per project; found "
                              f"{', '.join(str(p) for p in all_files)}")
    hook = getattr(module, "authenticate", None)
    if not callable(hook):
        raise LoadError(path, "expected `def authenticate(request)` (sync or async), "
                              f"found {_describe(hook)}")
    if len(inspect.signature(hook).parameters) != 1:
        raise LoadError(path, "authenticate must take one argument (request)")
    checked: Callable[..., Any] = hook
    return checked


def _load_step(path: Path, module: ModuleType, steps_dir: Path) -> LoadedStep | LoadedNoop:
    config = getattr(module, "config", None)
    handler = getattr(module, "handler", None)
    if isinstance(config, NoopConfig):
        if handler is not None:
            raise LoadError(path, "a NoopConfig step has no handler (nothing runs it); "
                                  "remove `handler`, or make it an EventConfig step")
        return LoadedNoop(config, path)
    if not isinstance(config, (ApiRouteConfig, EventConfig, CronConfig)):
        raise LoadError(path, "expected `config = ApiRouteConfig(...)`, `EventConfig(...)`, "
                              f"`CronConfig(...)` or `NoopConfig(...)`, found "
                              f"{_describe(config)}")
    if not inspect.iscoroutinefunction(handler):
        raise LoadError(path, f"expected `async def handler(...)`, found {_describe(handler)}")
    _check_arity(path, config, handler)
    if isinstance(config, ApiRouteConfig):
        config = _check_route(path, config)
        check_middleware(path, config.middleware)
    elif isinstance(config, CronConfig):
        if not croniter.is_valid(config.cron):
            raise LoadError(path, f"cron {config.cron!r} is not a cron expression; expected "
                                  "five fields (minute hour day month weekday), e.g. "
                                  "'*/5 * * * *', or six with seconds last")
    elif not config.subscribes:
        raise LoadError(path, "an event step must subscribe to at least one topic")
    return LoadedStep(config, handler, path, steps_dir)


def _check_arity(path: Path, config: StepConfig, handler: Handler) -> None:
    expected = {ApiRouteConfig: ("req", "ctx"), EventConfig: ("input", "ctx"),
                CronConfig: ("ctx",)}[type(config)]
    if not accepts(handler, len(expected)):
        line = inspect.getsourcelines(handler)[1]
        count = {1: "one argument", 2: "two arguments"}[len(expected)]
        raise LoadError(f"{path}:{line}", f"handler must take {count} ({', '.join(expected)}), "
                                          f"found {parameter_names(handler)}")


def _check_route(path: Path, config: ApiRouteConfig) -> ApiRouteConfig:
    """`config`, checked, with its path as the router's template (`:id` -> `{id}`)."""
    if config.method.upper() not in METHODS:
        raise LoadError(path, f"method {config.method!r} is not one of {', '.join(METHODS)}")
    if not config.path.startswith("/"):
        raise LoadError(path, f"path {config.path!r} must start with '/'")
    if any(config.path == p or config.path.startswith(p + "/") for p in RESERVED_PREFIXES):
        raise LoadError(path, f"path {config.path!r} is reserved by the server "
                              f"({', '.join(RESERVED_PREFIXES)})")
    try:
        template = route_template(config.path)
    except BadPath as exc:
        raise LoadError(path, str(exc)) from None
    return config if template == config.path else attrs.evolve(config, path=template)


def _with_middleware(step: LoadedStep | LoadedNoop,
                     shared: tuple[Middleware, ...]) -> LoadedStep | LoadedNoop:
    if not isinstance(step, LoadedStep) or not isinstance(step.config, ApiRouteConfig):
        return step
    return attrs.evolve(step, middleware=(*shared, *step.config.middleware))


def _check_unique_streams(streams: list[LoadedStream]) -> list[LoadError]:
    seen: dict[str, Path] = {}
    errors = []
    for stream in streams:
        if (first := seen.setdefault(stream.config.name, stream.path)) != stream.path:
            errors.append(LoadError(stream.path, f"stream {stream.config.name!r} is already "
                                                 f"defined in {first}"))
    return errors


def _check_unique_steps(steps: list[LoadedStep | LoadedNoop]) -> list[LoadError]:
    names: dict[str, Path] = {}
    routes: dict[tuple[str, str], Path] = {}
    errors = []
    for step in steps:
        if (first := names.setdefault(step.name, step.path)) != step.path:
            errors.append(LoadError(step.path, f"step name {step.name!r} is already used by "
                                               f"{first}"))
        if isinstance(step.config, ApiRouteConfig):
            method = step.config.method.upper()
            route = (method, PARAM.sub("{}", step.config.path.rstrip("/") or "/"))
            if (first := routes.setdefault(route, step.path)) != step.path:
                errors.append(LoadError(step.path, f"route {method} {step.config.path} is "
                                                   f"already served by {first}"))
    return errors


def _unheard_topics(steps: list[LoadedStep | LoadedNoop]) -> list[str]:
    """Topics emitted, really or virtually, that no step subscribes to: nearly always a
    typo. A virtual subscriber counts: it says who hears the topic outside the code."""
    heard = {t for s in steps for t in s.config.virtual_subscribes}
    heard |= {t for s in steps if isinstance(s.config, EventConfig) for t in s.config.subscribes}
    warnings = []
    for step in steps:
        real = () if isinstance(step.config, NoopConfig) else topics(step.config.emits)
        for verb, emitted in (("emits", real), ("virtually emits",
                                                 topics(step.config.virtual_emits))):
            warnings += [f"{step.path}: step {step.name!r} {verb} {topic!r}, but no step "
                         "subscribes to it" for topic in emitted if topic not in heard]
    return warnings

