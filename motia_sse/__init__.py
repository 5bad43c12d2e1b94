"""motia_sse: step files served as REST routes, event steps and live SSE stream feeds."""

from motia_sse.exceptions import LoadError, LoadErrors, ValidationError
from motia_sse.http.app import create_app
from motia_sse.run.api_route import ApiRequest, ApiResponse
from motia_sse.run.config import (
    ApiRouteConfig,
    BaseConfig,
    CronConfig,
    Emit,
    EventConfig,
    NoopConfig,
    QueryParam,
    StreamConfig,
)
from motia_sse.run.context import FlowContext
from motia_sse.run.middleware import Middleware, Next
from motia_sse.settings import Settings
from motia_sse.streams.store import Change, StoredItem, StreamStore
from motia_sse.streams.stream import Stream, StreamChannel, StreamEvent, StreamItem

__all__ = [
    "ApiRequest",
    "ApiResponse",
    "ApiRouteConfig",
    "BaseConfig",
    "Change",
    "CronConfig",
    "Emit",
    "EventConfig",
    "FlowContext",
    "LoadError",
    "LoadErrors",
    "Middleware",
    "Next",
    "NoopConfig",
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
