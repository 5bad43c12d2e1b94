"""Where in the user's files an exception came from, for errors that point at a line."""

from __future__ import annotations

import traceback
from pathlib import Path


def line_in(exc: BaseException, folder: Path) -> str | None:
    """`file:line` of the innermost frame of `exc` in a file under `folder`, if any."""
    root = str(folder.resolve())
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if f.filename.startswith(root + "/") or f.filename == root]
    if not frames:
        return None
    return f"{frames[-1].filename}:{frames[-1].lineno}"


def describe(exc: BaseException) -> str:
    """`Type: message`, as a user reads it."""
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
