"""The logging plumbing that feeds a LogBuffer: its handler, and `capture`/`release`,
which also let the steps logger's INFO records through without showing them elsewhere."""

from __future__ import annotations

import logging

from motia_sse.logs.buffer import LogBuffer, running_loop
from motia_sse.logs.step_logger import STEP_LOGGER

PACKAGE_LOGGER = "motia_sse"
# The level `capture` gives an unset `motia_sse.steps` logger. One below INFO, so that
# it lets INFO through and is told apart from an INFO someone else set (pytest's caplog).
_CAPTURE_LEVEL = logging.INFO - 1


class BufferHandler(logging.Handler):
    """Feeds the records of the `motia_sse` logger tree to a LogBuffer."""

    def __init__(self, buffer: LogBuffer) -> None:
        super().__init__()
        self.buffer = buffer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.buffer.add(record)
        except Exception:
            self.handleError(record)


class _QuietBelowConfig(logging.Filter):
    """On the steps logger while `capture` has lowered its level to take INFO records.

    Records the logging config would have dropped go to the buffers only, so that
    stderr and the root's handlers show what they showed before."""

    def filter(self, record: logging.LogRecord) -> bool:
        steps = logging.getLogger(STEP_LOGGER)
        if steps.level != _CAPTURE_LEVEL or steps.parent is None:
            return True
        if record.levelno >= steps.parent.getEffectiveLevel():
            return True
        for handler in _buffer_handlers():
            if record.levelno >= handler.level:
                handler.handle(record)
        return False


_quiet = _QuietBelowConfig()


def _buffer_handlers() -> list[BufferHandler]:
    return [h for h in logging.getLogger(PACKAGE_LOGGER).handlers if isinstance(h, BufferHandler)]


def capture(buffer: LogBuffer) -> BufferHandler:
    """Start feeding `motia_sse` records to `buffer`; steps' INFO records included."""
    handler = BufferHandler(buffer)
    buffer.bind(running_loop())
    logging.getLogger(PACKAGE_LOGGER).addHandler(handler)
    steps = logging.getLogger(STEP_LOGGER)
    # Only when the config would drop steps' INFO records; a lower level is left as it is.
    if steps.level == logging.NOTSET and steps.getEffectiveLevel() > logging.INFO:
        steps.setLevel(_CAPTURE_LEVEL)
        steps.addFilter(_quiet)
    return handler


def release(handler: BufferHandler) -> None:
    """Stop feeding `handler`'s buffer; the last one out restores the steps logger."""
    logging.getLogger(PACKAGE_LOGGER).removeHandler(handler)
    handler.buffer.bind(None)
    if not _buffer_handlers():
        steps = logging.getLogger(STEP_LOGGER)
        steps.removeFilter(_quiet)
        if steps.level == _CAPTURE_LEVEL:
            steps.setLevel(logging.NOTSET)
