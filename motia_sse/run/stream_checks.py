"""What a stream file and the project's `stream_auth.py` must declare: a stream's config
(its name, schema, access hook and store), and one `authenticate(request)` hook."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from motia_sse.exceptions import LoadError
from motia_sse.run.config import StreamConfig
from motia_sse.run.signatures import describe_found as _describe
from motia_sse.streams.ids import is_stream_name


def stream_config(path: Path, module: ModuleType) -> StreamConfig:
    """The `config` of a `*_stream.py` module, checked; raise LoadError naming the file."""
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
    return config


def auth_hook(path: Path, module: ModuleType, all_files: list[Path]) -> Callable[..., Any]:
    """The `authenticate` of the project's one `stream_auth.py` (`all_files` are those
    found), checked; raise LoadError naming the file."""
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
