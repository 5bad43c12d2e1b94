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
from motia_sse.run.middleware import PROJECT_FILE, Middleware, project_middleware
from motia_sse.run.route_paths import PARAM
from motia_sse.run.signatures import describe_found as _describe
from motia_sse.run.step_checks import check_step
from motia_sse.run.step_files import find_files, fresh_module_names, import_file
from motia_sse.run.stream_checks import auth_hook, stream_config

log = logging.getLogger(__name__)

Handler = Callable[[Any, Any], Awaitable[Any]]
T = TypeVar("T")


class _Named:
    """A loaded step's `name`: the one its config declares."""

    __slots__ = ()  # the attrs classes below stay slotted
    config: StepConfig | NoopConfig

    @property
    def name(self) -> str:
        """The step's name."""
        return self.config.name


@attrs.frozen
class LoadedStep(_Named):
    """A step's config and handler, and the file they came from."""

    config: StepConfig
    handler: Handler
    path: Path
    # Where a failure's line is looked for: middleware.py or a helper module the step
    # imports may raise from outside the step's own folder.
    steps_dir: Path
    # An API step's middleware as it runs: the project's (middleware.py), then its own.
    middleware: tuple[Middleware, ...] = ()


@attrs.frozen
class LoadedNoop(_Named):
    """A noop step's config (it has no handler) and the file it came from."""

    config: NoopConfig
    path: Path


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
    hooks = _load_each(auth_files, names, partial(auth_hook, all_files=auth_files), errors)
    errors += _check_unique_streams(streams) + _check_unique_steps(steps)
    if errors:
        raise LoadErrors(errors)
    steps = [_with_middleware(step, shared[0] if shared else ()) for step in steps]
    # auth_hook refuses a second stream_auth.py, so there is one hook at the most.
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
    return LoadedStream(stream_config(path, module), path)


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
    return LoadedStep(check_step(path, config, handler), handler, path, steps_dir)


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

