"""The `openai` stream: one message per trace, growing as the model answers."""

import attrs

from motia_sse import StreamConfig


@attrs.frozen
class OpenAiMessage:
    message: str
    # Set when the completion could not run (no API key, server unreachable, ...).
    error: str | None = None


config = StreamConfig(name="openai", schema=OpenAiMessage)
