"""What a step or stream file declares: streams, API, event and cron steps."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal

import attrs

if TYPE_CHECKING:
    from motia_sse.streams.store import StreamStore


def _strings(items: Iterable[str]) -> tuple[str, ...]:
    # Lists read better in a step file; tuples keep a frozen config frozen.
    return tuple(items)


def _params(items: Iterable[QueryParam]) -> tuple[QueryParam, ...]:
    return tuple(items)


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
class ApiRouteConfig:
    """An API step: one HTTP route served by the step's handler."""

    name: str
    path: str
    method: str = "GET"
    body_schema: type[Any] | None = None
    response_schema: dict[int, type[Any]] = attrs.field(factory=dict)
    query_params: tuple[QueryParam, ...] = attrs.field(default=(), converter=_params)
    emits: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    flows: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    description: str = ""


@attrs.frozen
class EventConfig:
    """An event step: runs for each event on the topics it subscribes to."""

    name: str
    subscribes: tuple[str, ...] = attrs.field(converter=_strings)
    input: type[Any] | None = None
    emits: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    flows: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    description: str = ""


@attrs.frozen
class CronConfig:
    """A cron step: its handler runs on a schedule (`cron`, five fields, UTC; a sixth
    field, seconds, is allowed). With Redis, each tick runs once across all processes."""

    name: str
    cron: str
    emits: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    flows: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    description: str = ""


StepConfig = ApiRouteConfig | EventConfig | CronConfig
