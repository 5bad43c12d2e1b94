"""The last text of each item a delta feed watches, and the splice from it to the next.

The hub asks `advance` once per change: the splice is computed once and shared by every
delta feed. Texts are kept only while some delta feed watches the item or its group, so
a server whose feeds never ask for deltas keeps no copy of anything.
"""

from __future__ import annotations

from collections import Counter

import attrs
import orjson

from motia_sse.streams.delta import Splice, splice
from motia_sse.streams.store import Change

# (stream, group)
GroupKey = tuple[str, str]


@attrs.frozen
class Revision:
    """What a change did to an item's text: the new text (None for a delete) and, when
    the previous text was kept, the splice from it (at version `base`)."""

    text: bytes | None
    base: int = 0
    splice: Splice | None = None


@attrs.define
class DeltaTexts:
    """Watch counts per item and per group, and the texts they keep."""

    # By (stream, group, item), item None for a whole group: delta subscriptions open.
    _watchers: Counter[tuple[str, str, str | None]] = attrs.field(factory=Counter)
    # By group, then item id: (version, JSON text as sent).
    _texts: dict[GroupKey, dict[str, tuple[int, bytes]]] = attrs.field(factory=dict)

    def watch(self, stream: str, group: str, item: str | None) -> None:
        """A delta feed subscribed to an item (or, `item` None, a group)."""
        self._watchers[(stream, group, item)] += 1

    def unwatch(self, stream: str, group: str, item: str | None) -> None:
        """A delta subscription ended; drop the texts nothing watches any more."""
        key = (stream, group, item)
        self._watchers[key] -= 1
        if self._watchers[key] > 0:
            return
        del self._watchers[key]
        texts = self._texts.get((stream, group))
        if texts is None or (stream, group, None) in self._watchers:
            return
        gone = [item] if item is not None else [
            i for i in texts if (stream, group, i) not in self._watchers]
        for item_id in gone:
            texts.pop(item_id, None)
        if not texts:
            del self._texts[(stream, group)]

    def advance(self, change: Change) -> Revision | None:
        """The item's new text and the splice to it; None if no delta feed watches it."""
        where = (change.stream, change.group_id)
        if (*where, None) not in self._watchers and (*where, change.id) not in self._watchers:
            return None
        texts = self._texts.setdefault(where, {})
        kept = texts.pop(change.id, None)
        if change.data is None:
            if not texts:
                del self._texts[where]
            return Revision(None)
        # The very bytes every kind of feed sends as the item (wire.py's item).
        text = orjson.dumps({**change.data, "id": change.id})
        texts[change.id] = (change.version, text)
        if kept is None:
            return Revision(text)
        return Revision(text, kept[0], splice(kept[1], text))

    @property
    def kept(self) -> int:
        """Texts held now."""
        return sum(len(texts) for texts in self._texts.values())
