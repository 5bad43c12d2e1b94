"""Where a committed change or a custom event goes after the store: to the feeds."""

from __future__ import annotations

from typing import Any, Protocol

import attrs

from motia_sse.streams.hub import Hub
from motia_sse.streams.store import Change


class Fanout(Protocol):
    """Delivers changes and custom events to every feed that watches them."""

    async def changed(self, change: Change, shared: bool) -> None:
        """A store committed `change` (`shared`: its version is the server store's)."""
        ...

    async def send(self, stream: str, group_id: str, item_id: str | None, event_type: str,
                   data: Any) -> None:
        """A custom event for whatever feeds are open now."""
        ...


@attrs.frozen
class LocalFanout:
    """One process: straight to this process's hub."""

    hub: Hub

    async def changed(self, change: Change, shared: bool) -> None:
        self.hub.publish(change, shared)

    async def send(self, stream: str, group_id: str, item_id: str | None, event_type: str,
                   data: Any) -> None:
        self.hub.send(stream, group_id, item_id, event_type, data)
