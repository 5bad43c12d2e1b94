"""The `answer` stream: one answer growing token by token, for (b) at scale."""

import attrs

from motia_sse import StreamConfig


@attrs.frozen
class Answer:
    # The text so far; first, so that a delta from one token to the next is the token
    # and the stamp after it, not the whole text.
    text: str
    # When the client sent this token (CLOCK_MONOTONIC, ns).
    t: int
    # Which token: its last digit always changes, so a delta's kept suffix never
    # reaches back into the stamp before it.
    seq: int
    fin: bool = False


config = StreamConfig(name="answer", schema=Answer)
