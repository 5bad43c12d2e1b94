"""motia_sse: step files served as REST routes, event steps and live SSE stream feeds."""

from motia_sse.api import ApiRequest, ApiResponse
from motia_sse.app import create_app
from motia_sse.config import (
    ApiRouteConfig,
    BaseConfig,
    CronConfig,
    EventConfig,
    QueryParam,
    Settings,
    StreamConfig,
)
from motia_sse.context import FlowContext
from motia_sse.exceptions import LoadError, LoadErrors, ValidationError
from motia_sse.streams.store import Change, StoredItem, StreamStore
from motia_sse.streams.stream import Stream, StreamChannel, StreamEvent, StreamItem

__all__ = [
    "ApiRequest",
    "ApiResponse",
    "ApiRouteConfig",
    "BaseConfig",
    "Change",
    "CronConfig",
    "EventConfig",
    "FlowContext",
    "LoadError",
    "LoadErrors",
    "QueryParam",
    "Settings",
    "StoredItem",
    "Stream",
    "StreamChannel",
    "StreamConfig",
    "StreamEvent",
    "StreamItem",
    "StreamStore",
    "ValidationError",
    "create_app",
]
