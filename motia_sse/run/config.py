"""What a step or stream file declares: streams, API, event, cron and noop steps."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import attrs

from motia_sse.run.middleware import Middleware, middleware_list

if TYPE_CHECKING:
    from motia_sse.streams.store import StreamStore


def _strings(items: Iterable[str]) -> tuple[str, ...]:
    # Lists read better in a step file; tuples keep a frozen config frozen.
    return tuple(items)


def _params(items: Iterable[QueryParam]) -> tuple[QueryParam, ...]:
    return tuple(items)


@attrs.frozen
class Emit:
    """A topic a step emits, as Motia writes it: `{topic, label, conditional}`; the label
    and a conditional edge (emitted on some runs only) are drawn in the flows view."""

    topic: str
    label: str | None = None
    conditional: bool = False


EmitEntry = str | Emit | Mapping[str, Any]
_EMIT_KEYS: dict[str, type[Any] | tuple[type[Any], ...]] = {
    "topic": str, "label": (str, type(None)), "conditional": bool}


def _emits(entries: Iterable[EmitEntry]) -> tuple[Emit, ...]:
    # One shape for everything downstream, whichever of Motia's spellings the step used.
    if isinstance(entries, (str, Mapping)):
        raise TypeError(f"emits must be a list of topics, got {entries!r}; "
                        f"write [{entries!r}]")
    return tuple(_emit(entry) for entry in entries)


def _emit(entry: EmitEntry) -> Emit:
    if isinstance(entry, Emit):
        return entry
    if isinstance(entry, str):
        return Emit(entry)
    if isinstance(entry, Mapping):
        wrong = [key for key in entry if key not in _EMIT_KEYS] + [
            key for key, kind in _EMIT_KEYS.items()
            if key in entry and not isinstance(entry[key], kind)]
        if "topic" in entry and not wrong:
            return Emit(entry["topic"], entry.get("label"), entry.get("conditional", False))
    raise TypeError(f"emits entry {entry!r}: expected a topic, Emit(...) or "
                    "{'topic': str, 'label': str (optional), 'conditional': bool (optional)}")


def topics(emits: Iterable[Emit]) -> tuple[str, ...]:
    """The topics of emit entries, in order."""
    return tuple(emit.topic for emit in emits)


def _count(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A per-step count (attempts, handlers at once): None for the default, else >= 1."""
    # bool is an int to Python, never a count to a user.
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or value < 1):
        raise ValueError(f"{attribute.name} must be a whole number >= 1 (or None for the "
                         f"server's default), got {value!r}")


def _seconds(*, zero_ok: bool) -> Callable[[object, attrs.Attribute[Any], object], None]:
    """A per-step duration in seconds: None for the default, else > 0 (>= 0 if zero_ok)."""
    bound = ">= 0" if zero_ok else "> 0"

    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is None:
            return
        if (isinstance(value, bool) or not isinstance(value, int | float)
                or not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok)):
            raise ValueError(f"{attribute.name} must be a number of seconds {bound} (or None "
                             f"for the server's default), got {value!r}")

    return check


StorageType = Literal["default", "custom"]


@attrs.frozen
class BaseConfig:
    """How a stream keeps its items: the server's store, or one of the user's own."""

    storage_type: StorageType = "default"
    # Called once at start-up for storage_type="custom"; returns a StreamStore.
    factory: Callable[[], StreamStore] | None = None


@attrs.frozen
class StreamConfig:
    """A stream: JSON items of `schema`, addressed by group id and item id."""

    name: str
    schema: type[Any]
    base_config: BaseConfig = BaseConfig()
    # (StreamSubscription, auth context) -> bool, sync or async: who may open its feeds.
    can_access: Callable[..., Any] | None = None


@attrs.frozen
class QueryParam:
    """A documented query parameter of an API step."""

    name: str
    description: str = ""


@attrs.frozen
class _Drawn:
    """What every kind of step declares: its name, and how the flows view draws it.
    Keyword-only, so each kind's own fields keep their places after `name`."""

    name: str
    # Drawn in the flows view as dashed edges, never routed: what happens outside the code.
    virtual_emits: tuple[Emit, ...] = attrs.field(default=(), converter=_emits, kw_only=True)
    virtual_subscribes: tuple[str, ...] = attrs.field(default=(), converter=_strings,
                                                      kw_only=True)
    flows: tuple[str, ...] = attrs.field(default=(), converter=_strings, kw_only=True)
    description: str = attrs.field(default="", kw_only=True)


@attrs.frozen
class _Emitting(_Drawn):
    """A step whose handler may emit: the topics it emits, as plain names or Emit entries."""

    emits: tuple[Emit, ...] = attrs.field(default=(), converter=_emits, kw_only=True)


@attrs.frozen
class _Queued(_Emitting):
    """A step run from the queue or the clock, with its retry settings. None takes the
    server's default: --max-attempts (tries in all), --retry-backoff (seconds before the
    first retry, doubling), --handler-timeout (seconds; past it the handler is cancelled
    and retried)."""

    max_attempts: int | None = attrs.field(default=None, validator=_count, kw_only=True)
    backoff: float | None = attrs.field(default=None, validator=_seconds(zero_ok=True),
                                        kw_only=True)
    timeout: float | None = attrs.field(default=None, validator=_seconds(zero_ok=False),
                                        kw_only=True)


@attrs.frozen
class ApiRouteConfig(_Emitting):
    """An API step: one HTTP route served by the step's handler."""

    path: str
    method: str = "GET"
    body_schema: type[Any] | None = None
    response_schema: dict[int, type[Any]] = attrs.field(factory=dict)
    query_params: tuple[QueryParam, ...] = attrs.field(default=(), converter=_params)
    # Run in order around the handler, after the project-wide list (middleware.py).
    middleware: tuple[Middleware, ...] = attrs.field(default=(), converter=middleware_list)


@attrs.frozen
class EventConfig(_Queued):
    """An event step: runs for each event on the topics it subscribes to. Its queue
    settings are Motia's infrastructure.queue / .handler; `concurrency`: handlers of this
    step at once in one process (no limit of its own by default; --max-handlers still
    bounds all steps together)."""

    subscribes: tuple[str, ...] = attrs.field(converter=_strings)
    input: type[Any] | None = None
    concurrency: int | None = attrs.field(default=None, validator=_count, kw_only=True)


@attrs.frozen
class CronConfig(_Queued):
    """A cron step: its handler runs on a schedule (`cron`, five fields, UTC; a sixth
    field, seconds, is allowed). With Redis, each tick runs once across all processes.
    A failing tick is tried `max_attempts` times in all (default 1: the next tick is the
    retry), `backoff` seconds apart, doubling; `timeout` as for event steps."""

    cron: str


@attrs.frozen
class NoopConfig(_Drawn):
    """A step without a handler, as Motia's noop: a person's task or an outside system,
    shown in the flows view and joined to the code's steps by its virtual edges."""


# The steps that run a handler; a NoopConfig step has none.
StepConfig = ApiRouteConfig | EventConfig | CronConfig
