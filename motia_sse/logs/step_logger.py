"""`ctx.logger`: records bound to the step and trace that wrote them."""

from __future__ import annotations

import logging
from typing import Any

import attrs

STEP_LOGGER = "motia_sse.steps"
# Looked up once: getLogger takes a module lock, and a logger is made per handler call.
_STEP_LOGGER = logging.getLogger(STEP_LOGGER)


@attrs.frozen
class StepLogger:
    """`ctx.logger`: the standard logger, with step name and trace id on each record."""

    step: str
    trace_id: str
    _logger: logging.Logger = _STEP_LOGGER

    def debug(self, message: str, /, **fields: Any) -> None:
        """Log at DEBUG with optional structured fields."""
        self._log(logging.DEBUG, message, fields)

    def info(self, message: str, /, **fields: Any) -> None:
        """Log at INFO with optional structured fields."""
        self._log(logging.INFO, message, fields)

    def warning(self, message: str, /, **fields: Any) -> None:
        """Log at WARNING with optional structured fields."""
        self._log(logging.WARNING, message, fields)

    warn = warning

    def error(self, message: str, /, **fields: Any) -> None:
        """Log at ERROR with optional structured fields."""
        self._log(logging.ERROR, message, fields)

    def exception(self, message: str, /, **fields: Any) -> None:
        """Log at ERROR with the current exception's traceback."""
        self._log(logging.ERROR, message, fields, exc_info=True)

    def _log(self, level: int, message: str, fields: dict[str, Any],
             exc_info: bool = False) -> None:
        extra = {"step": self.step, "trace_id": self.trace_id, "fields": fields}
        self._logger.log(level, message, extra=extra, exc_info=exc_info, stacklevel=3)
