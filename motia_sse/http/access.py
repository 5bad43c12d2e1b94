"""Who may open which feed: the app's `authenticate` hook and each stream's `can_access`.

`authenticate(request)` (declared once, in a `stream_auth.py` file under the steps
folder) turns a feed request into an auth context: whatever the app likes, or None
for an anonymous request. `StreamConfig(can_access=...)` then decides per subscription.
Either may be sync or async. A hook that raises refuses: it never lets a request by.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
from aiohttp import web

from motia_sse.exceptions import Refused

log = logging.getLogger(__name__)

Authenticate = Callable[[web.Request], Any]
CanAccess = Callable[["StreamSubscription", Any], "bool | Awaitable[bool]"]


@attrs.frozen
class StreamSubscription:
    """What a feed asks for, as `can_access` sees it: an item, or (id None) a group."""

    stream: str
    group_id: str
    id: str | None = None


async def _call(hook: Callable[..., Any], *args: Any) -> Any:
    result = hook(*args)
    return await result if inspect.isawaitable(result) else result


@attrs.frozen
class AccessControl:
    """The hooks of one project; `check` refuses a whole request if any part is refused."""

    authenticate: Authenticate | None
    rules: dict[str, CanAccess]

    async def check(self, request: web.Request, subs: list[StreamSubscription]) -> Any:
        """The request's auth context, or raise Refused naming each refused subscription."""
        guarded = [s for s in subs if s.stream in self.rules]
        if not guarded:
            return None
        context = await self._authenticate(request)
        refused = [s for s in guarded if not await self._allows(s, context)]
        if not refused:
            return context
        names = [_describe(s) for s in refused]
        if context is None:
            raise Refused(401, "authentication required", names)
        raise Refused(403, "access denied", names)

    async def _authenticate(self, request: web.Request) -> Any:
        if self.authenticate is None:
            return None
        try:
            return await _call(self.authenticate, request)
        except Exception as exc:
            log.warning("authenticate refused %s %s: %r", request.method, request.path, exc)
            raise Refused(401, "authentication failed",
                                [f"{type(exc).__name__}: {exc}"]) from None

    async def _allows(self, sub: StreamSubscription, context: Any) -> bool:
        try:
            return bool(await _call(self.rules[sub.stream], sub, context))
        except Exception:
            log.exception("can_access of stream %r raised; refusing %s", sub.stream,
                          _describe(sub))
            return False


def _describe(sub: StreamSubscription) -> str:
    return "/".join(p for p in (sub.stream, sub.group_id, sub.id) if p is not None)
