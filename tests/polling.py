"""`eventually`: poll a check until it holds, for state that gives the test no event to await."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")


@overload
async def eventually(check: Callable[[], Awaitable[T]], *, until: Callable[[T], object] = ...,
                     within: float = ..., every: float = ..., what: str = ...) -> T: ...
@overload
async def eventually(check: Callable[[], T], *, until: Callable[[T], object] = ...,
                     within: float = ..., every: float = ..., what: str = ...) -> T: ...
async def eventually(check: Callable[[], Any], *, until: Callable[[Any], object] = bool,
                     within: float = 10.0, every: float = 0.05, what: str = "") -> Any:
    """The first result of `check` (awaited if it is awaitable) that `until` holds for
    (truthy by default), checking every `every` s; AssertionError naming `what` and the
    last result if none comes within `within` s."""
    last: Any = None
    timeout = asyncio.timeout(within)
    try:
        async with timeout:
            while True:
                last = check()
                if inspect.isawaitable(last):
                    last = await last
                if until(last):
                    return last
                await asyncio.sleep(every)
    except TimeoutError:
        if not timeout.expired():
            raise  # the check's own timeout, not ours
        raise AssertionError(f"not {what or 'true'} within {within}s; last: {last!r}") from None
