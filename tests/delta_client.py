"""What a `delta=1` client does with its events, in Python: keep texts, apply deltas.

Mirrors README "Delta frames": one text per item and subscription, kept exactly as
received; a delta keeps `prefix` and `suffix` UTF-16 code units of the text of version
`base` and puts `insert` between them.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from tests.raw_sse import RawEvent

# ("item" or "row", stream, group, item id); stream and group "" on single feeds.
Key = tuple[str, str, str, str]


def apply_utf16(old: str, prefix: int, suffix: int, insert: str) -> str:
    """Splice as JavaScript string indices do: in UTF-16 code units."""
    units = old.encode("utf-16-le")
    return (units[:2 * prefix].decode("utf-16-le") + insert
            + units[len(units) - 2 * suffix:].decode("utf-16-le"))


@attrs.define
class DeltaView:
    """The texts a delta client of one feed holds, the version of each, what it got."""

    # "item", "group" or "mux": which URL the events come from.
    feed: str
    texts: dict[Key, tuple[str, str]] = attrs.Factory(dict)
    snapshots: int = 0
    deltas: int = 0

    def take(self, event: RawEvent) -> None:
        """Apply one event; a delta whose base is not the held version fails the test."""
        version = event.own_id or ""
        if event.event in ("message", "item", "create", "update"):
            envelope, text = self._split(event)
            self.texts[self._key(event.event, envelope or json.loads(text))] = (version, text)
            self.snapshots += 1
        elif event.event in ("delta", "item-delta", "update-delta"):
            change = event.json()
            key = next(iter(self.texts)) if event.event == "delta" else self._key(event.event,
                                                                                 change)
            held_version, held = self.texts[key]
            assert held_version == str(change["base"]), (key, held_version, change["base"])
            self.texts[key] = (version, apply_utf16(held, change["prefix"], change["suffix"],
                                                    change["insert"]))
            self.deltas += 1
        elif event.event in ("delete", "item-delete"):
            self.texts.pop(self._key(event.event, event.json()), None)
        elif event.event == "sync":
            self.texts = {k: v for k, v in self.texts.items() if k[0] != "row"}

    def item(self, key: Key | None = None) -> Any:
        """The item a kept text holds, parsed (the only item subscription's, by default)."""
        key = key or next(k for k in self.texts if k[0] == "item")
        return json.loads(self.texts[key][1])

    def rows(self) -> dict[str, Any]:
        """The rows with a kept text, by id."""
        return {k[3]: json.loads(t) for k, (_, t) in self.texts.items() if k[0] == "row"}

    def _key(self, event: str, where: dict[str, Any]) -> Key:
        kind = "item" if self.feed == "item" or event.startswith("item") else "row"
        return (kind, where.get("stream", ""), where.get("group", ""), where["id"])

    def _split(self, event: RawEvent) -> tuple[dict[str, Any] | None, str]:
        """The envelope (multiplexed feeds) and the item's text, as received."""
        if self.feed != "mux":
            return None, event.data
        envelope, text = event.data.split("\n", 1)
        return json.loads(envelope), text
