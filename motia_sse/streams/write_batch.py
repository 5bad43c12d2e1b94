"""One loop turn's writes to one feed's socket, joined into one write."""

from __future__ import annotations

from typing import Protocol


class Sink(Protocol):
    """Where a feed's bytes go: its transport, or a `WriteBatch` in front of it."""

    def write(self, data: bytes) -> None:
        """Take `data`, never blocking."""
        ...

    def is_closing(self) -> bool:
        """Whether the connection is closing or gone."""
        ...


class Transport(Sink, Protocol):
    """What a batch needs of the transport under it (asyncio's and uvloop's alike)."""

    def get_write_buffer_size(self) -> int:
        """Bytes asyncio holds that the kernel has not taken yet."""
        ...

    def get_write_buffer_limits(self) -> tuple[int, int]:
        """The low- and high-water marks of that buffer."""
        ...


class WriteBatch:
    """Collects writes and hands them to `transport` as one, at `flush`.

    It takes no more than the room left below the transport's high-water mark before
    writing at once, so a client that lags still pauses the feed (which then conflates)
    as soon as it would without batching: the lag stays bounded as before."""

    __slots__ = ("_parts", "_room", "transport")

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self._parts: list[bytes] = []
        self._room = self._free()

    def write(self, data: bytes) -> None:
        """Add `data` to the batch (written at once if it fills the room)."""
        self._parts.append(data)
        self._room -= len(data)
        if self._room <= 0:
            self.flush()
            self._room = self._free()

    def is_closing(self) -> bool:
        """The transport's."""
        return self.transport.is_closing()

    def flush(self) -> None:
        """Write what the batch holds, in one write."""
        parts = self._parts
        if not parts:
            return
        self._parts = []
        if not self.transport.is_closing():
            self.transport.write(parts[0] if len(parts) == 1 else b"".join(parts))

    def _free(self) -> int:
        _, high_water = self.transport.get_write_buffer_limits()
        return high_water - self.transport.get_write_buffer_size()
