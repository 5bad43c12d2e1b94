"""Errors that carry what a user needs to fix the problem."""

from __future__ import annotations

from pathlib import Path


class MotiaError(Exception):
    """Base of every error motia_sse raises on purpose."""


class LoadError(MotiaError):
    """A step or stream file that cannot be served, with the file it came from."""

    def __init__(self, path: Path | str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = str(path)
        self.message = message


class LoadErrors(MotiaError):
    """Every problem found while loading a steps folder, reported together."""

    def __init__(self, errors: list[LoadError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors

    def indented(self) -> str:
        """One indented line per problem, each naming its file (and line)."""
        return "\n".join(f"  {e}" for e in self.errors)


class ValidationError(MotiaError):
    """Data that does not fit a schema; `details` name each field and problem."""

    def __init__(self, error: str, details: list[str]) -> None:
        super().__init__(f"{error}: {'; '.join(details)}")
        self.error = error
        self.details = details


class InvalidId(ValidationError):
    """A group id, item id or key that cannot be one. In a handler it was nearly always
    taken from the request, so the request is what is wrong: a 400."""


class Refused(MotiaError):
    """A request the server will not serve; becomes `{"error", "details"}` with `status`."""

    def __init__(self, status: int, error: str, details: list[str]) -> None:
        super().__init__(f"{error}: {'; '.join(details)}")
        self.status, self.error, self.details = status, error, details


class UnknownStreamError(MotiaError, AttributeError):
    """A stream name that no `*_stream.py` file defines."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.error = f"no stream named {name!r}"
        self.details = [f"defined streams: {', '.join(known) or 'none'}"]
        super().__init__(f"{self.error}; {self.details[0]}")
        self.name = name


class HandlerTimeout(MotiaError):
    """A handler cancelled for running past its step's `timeout` (or --handler-timeout)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"timed out after {seconds:g}s")
        self.seconds = seconds


class UndeclaredEmitError(MotiaError):
    """A step emitted a topic that its config does not list in `emits`."""

    def __init__(self, step: str, topic: str, declared: tuple[str, ...]) -> None:
        super().__init__(
            f"step {step!r} emitted {topic!r}, which its config does not declare; "
            f"add it to emits (declared: {', '.join(declared) or 'none'})"
        )
