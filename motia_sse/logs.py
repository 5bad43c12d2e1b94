"""Structured logs: one line per record, bound to the step and trace that wrote it."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, Literal

import attrs

LogFormat = Literal["text", "json"]
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


class TextFormatter(logging.Formatter):
    """`12:00:01 INFO  [Step trace] message key=value`."""

    def format(self, record: logging.LogRecord) -> str:
        where = " ".join(str(p) for p in (getattr(record, "step", None),
                                           getattr(record, "trace_id", None)) if p)
        fields = getattr(record, "fields", None) or {}
        line = (f"{self.formatTime(record, '%H:%M:%S')} {record.levelname:<7}"
                f"{f'[{where}] ' if where else ''}{record.getMessage()}")
        if fields:
            line += " " + " ".join(f"{k}={json.dumps(v, default=str)}" for k, v in fields.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": record.created,
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("step", "trace_id"):
            if (value := getattr(record, key, None)) is not None:
                entry[key] = value
        entry.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(log_format: LogFormat = "text", level: int = logging.INFO) -> None:
    """Send every motia_sse record to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    # Imported here: log_buffer builds on this module.
    from motia_sse.log_buffer import BufferHandler

    root = logging.getLogger("motia_sse")
    # Replaces earlier output, but keeps feeding the workbench of a running app.
    root.handlers[:] = [handler, *(h for h in root.handlers if isinstance(h, BufferHandler))]
    root.setLevel(level)
    root.propagate = False
