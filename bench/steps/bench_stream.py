"""The `bench` stream: items the fan-out and idle-feed scenarios watch."""

import attrs

from motia_sse import StreamConfig


@attrs.frozen
class Tick:
    # Which update this is, and when the client sent it (CLOCK_MONOTONIC, ns).
    seq: int
    t: int
    # The last update of a run: the client stops waiting once every feed has it.
    fin: bool = False


config = StreamConfig(name="bench", schema=Tick)
