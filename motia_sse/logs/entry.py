"""One log record as the workbench keeps it: long parts cut short, its JSON made once."""

from __future__ import annotations

import logging
from typing import Any

import attrs
import orjson

# UTF-8 bytes the buffer keeps of a message, of each field's JSON and of an exception's
# text. The log output itself gets every record whole: only the buffer's copy is cut.
PART_LIMIT = 16 * 1024


def _frame(entry: LogEntry) -> bytes:
    # orjson never writes a newline, so the JSON is one `data:` line.
    return b"id: %d\nevent: log\ndata: %b\n\n" % (entry.seq, orjson.dumps(entry.to_json()))


@attrs.frozen
class LogEntry:
    """One record as the workbench shows it."""

    seq: int
    time: float
    levelno: int
    level: str
    logger: str
    message: str
    step: str | None
    trace_id: str | None
    fields: dict[str, Any]
    exception: str | None
    # The SSE event, made once, here: a record published to a thousand log feeds is
    # encoded once, and each feed writes the same bytes.
    frame: bytes = attrs.field(init=False, eq=False, repr=False,
                               default=attrs.Factory(_frame, takes_self=True))

    @property
    def size(self) -> int:
        """What the entry counts for against the buffer's bound: its event's bytes."""
        return len(self.frame)

    def to_json(self) -> dict[str, Any]:
        """The JSON object the endpoints send."""
        return {"seq": self.seq, "time": self.time, "level": self.level, "logger": self.logger,
                "step": self.step, "trace_id": self.trace_id, "message": self.message,
                "fields": self.fields, "exception": self.exception}


_formatter = logging.Formatter()


def make_entry(seq: int, record: logging.LogRecord) -> LogEntry:
    """`record` as entry number `seq`: a copy, with each long part cut to PART_LIMIT."""
    exception = None
    if record.exc_info:
        exception = clip(record.exc_text or _formatter.formatException(record.exc_info))
    step = getattr(record, "step", None)
    trace_id = getattr(record, "trace_id", None)
    return LogEntry(seq=seq, time=record.created, levelno=record.levelno,
                    level=record.levelname.lower(), logger=record.name,
                    message=clip(record.getMessage()),
                    step=None if step is None else str(step),
                    trace_id=None if trace_id is None else str(trace_id),
                    fields=_fields(getattr(record, "fields", None)),
                    exception=exception)


def _fields(fields: Any) -> dict[str, Any]:
    if not fields:
        return {}
    if not isinstance(fields, dict):  # not from ctx.logger: someone's own `extra`
        fields = {"fields": fields}
    return {str(key): _field(value) for key, value in fields.items()}


def clip(text: str) -> str:
    """`text`, or its first PART_LIMIT bytes and a marker saying how long it was."""
    if text.isascii() and len(text) <= PART_LIMIT:
        return text
    # "replace": a lone surrogate would make the entry's JSON fail.
    raw = text.encode("utf-8", "replace")
    if len(raw) <= PART_LIMIT:
        return raw.decode()
    kept = raw[:PART_LIMIT].decode("utf-8", "ignore")
    return f"{kept}\u2026 (truncated, {len(raw)} bytes)"


def _field(value: Any) -> Any:
    """A JSON-safe copy made now (the step may change its objects after logging them);
    a string of its JSON, cut, if that is too long."""
    if isinstance(value, str):
        return clip(value)
    try:
        raw = orjson.dumps(value, default=repr, option=orjson.OPT_NON_STR_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        return clip(repr(value))
    if len(raw) > PART_LIMIT:
        return clip(raw.decode())
    return orjson.loads(raw)
