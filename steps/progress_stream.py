"""The `progress` stream: a job's progress, updated as it runs (needs no API key)."""

import attrs

from motia_sse import StreamConfig


@attrs.frozen
class JobProgress:
    status: str
    done: int
    total: int


config = StreamConfig(name="progress", schema=JobProgress)
