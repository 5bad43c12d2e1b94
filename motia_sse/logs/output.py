"""Where records go: stderr, one line each, as text or JSON; aiohttp's records too."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, Literal

from aiohttp.http_exceptions import BadHttpMessage

from motia_sse.logs.capture import BufferHandler

LogFormat = Literal["text", "json"]


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


class _BadRequestAsOneLine(logging.Filter):
    """On aiohttp.server: a request its parser refused (answered 400 already) is the
    client's mistake, not the server's; one INFO line saying what was wrong, no traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, BadHttpMessage):
            return True
        # handle_error's "Error handling request from %s" has the client's address.
        client = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
        record.msg, record.args = "bad request from %s: %s", (client, _one_line(exc.message))
        record.exc_info, record.exc_text = None, None
        record.levelno, record.levelname = logging.INFO, "INFO"
        # The logger let the record by at its old level: only if it wants INFO ones too.
        return logging.getLogger(record.name).isEnabledFor(logging.INFO)


def _one_line(message: str, limit: int = 200) -> str:
    # aiohttp's parser quotes the client's bytes on a line of their own, with a caret
    # line under them; a long header could make it kilobytes.
    text = " ".join(line.strip() for line in message.splitlines() if line.strip(" ^"))
    return text if len(text) <= limit else text[:limit] + "..."


_bad_requests = _BadRequestAsOneLine()


def setup_logging(log_format: LogFormat = "text", level: int = logging.INFO) -> None:
    """Send every motia_sse and aiohttp record to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger("motia_sse")
    # Replaces earlier output, but keeps feeding the workbench of a running app.
    root.handlers[:] = [handler, *(h for h in root.handlers if isinstance(h, BufferHandler))]
    root.setLevel(level)
    root.propagate = False
    # Without a handler of its own, aiohttp's records reach Python's last-resort one:
    # unformatted, and every refused request an ERROR with a traceback.
    aiohttp_tree = logging.getLogger("aiohttp")
    aiohttp_tree.handlers[:] = [handler]
    aiohttp_tree.setLevel(level)
    aiohttp_tree.propagate = False
    logging.getLogger("aiohttp.server").addFilter(_bad_requests)
