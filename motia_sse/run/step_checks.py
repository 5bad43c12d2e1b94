"""What one step file must declare beyond its config's type: a handler taking the step
kind's arguments, a route's method and path, a cron expression, an event step's topics."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
from croniter import croniter

from motia_sse.exceptions import LoadError
from motia_sse.run.config import ApiRouteConfig, CronConfig, EventConfig, StepConfig
from motia_sse.run.middleware import check_middleware
from motia_sse.run.route_paths import BadPath, route_template
from motia_sse.run.signatures import accepts, parameter_names

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# Paths the server itself serves; a step may not take them.
RESERVED_PREFIXES = ("/streams", "/__motia", "/openapi.json")


def check_step(path: Path, config: StepConfig, handler: Callable[..., Any]) -> StepConfig:
    """`config`, checked with its `async def handler`, as the server runs it (a route's
    path as the router's template); raise LoadError naming the file."""
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
    return config


def _check_arity(path: Path, config: StepConfig, handler: Callable[..., Any]) -> None:
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
