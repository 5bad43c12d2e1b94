"""What a step or stream file declares, and the server's settings."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
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
StoreKind = Literal["sqlite", "memory"]


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


@attrs.frozen
class Settings:
    """Everything the server is told at start-up; read once, then passed in."""

    host: str = "127.0.0.1"
    port: int = 3000
    # `motia-sse dev`: for the person writing the steps (a failing step's answer names
    # its file and line); `start` faces the internet and tells less.
    dev: bool = False
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
