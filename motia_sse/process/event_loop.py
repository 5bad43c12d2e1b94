"""The event loop a server process runs on: uvloop when installed, as uvicorn chooses.

The feed path writes shared bytes straight to each transport, so the loop's own
`transport.write` and its selector are most of a fan-out's cost (BENCHMARKS.md);
uvloop does both in C. It is optional (`pip install motia_sse[speed]`): `auto` takes it
when it can be imported and falls back to asyncio's loop otherwise.
"""

from __future__ import annotations

import asyncio
import importlib
from typing import Literal

LoopKind = Literal["auto", "asyncio", "uvloop"]
LOOP_KINDS: tuple[LoopKind, ...] = ("auto", "asyncio", "uvloop")


class LoopUnavailable(Exception):
    """`--loop uvloop` on a machine without uvloop."""


def resolve_loop(kind: LoopKind) -> Literal["asyncio", "uvloop"]:
    """The loop `kind` means here: `auto` is uvloop if installed, else asyncio."""
    if kind == "asyncio":
        return "asyncio"
    if _uvloop_installed():
        return "uvloop"
    if kind == "uvloop":
        raise LoopUnavailable("--loop uvloop: uvloop is not installed (pip install "
                              "'motia_sse[speed]'), or use --loop auto or asyncio")
    return "asyncio"


def new_event_loop(kind: LoopKind) -> asyncio.AbstractEventLoop:
    """A fresh loop of the kind `kind` resolves to (LoopUnavailable if it cannot be had)."""
    if resolve_loop(kind) == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def _uvloop_installed() -> bool:
    try:
        importlib.import_module("uvloop")
    except ImportError:
        return False
    return True
