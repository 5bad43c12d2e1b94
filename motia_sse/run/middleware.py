"""API middleware: what one is, the load-time check of a list of them, and the chain
that runs them around a route's handler."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from motia_sse.exceptions import LoadError
from motia_sse.run.signatures import accepts, describe_found, parameter_names

if TYPE_CHECKING:
    from motia_sse.run.api_route import ApiRequest, ApiResponse
    from motia_sse.run.context import FlowContext

# Strings: the request and response types live in api_route.py, which runs the chain.
Next: TypeAlias = Callable[[], Awaitable["ApiResponse"]]
"""What a middleware gets as `next`: runs the rest of the chain and the handler."""

Middleware: TypeAlias = Callable[["ApiRequest[Any]", "FlowContext", Next],
                                 Awaitable["ApiResponse"]]
"""`async def mw(req, ctx, next) -> ApiResponse`: returns `await next()`, changed or not,
or an answer of its own without calling `next`."""

Call = Callable[[Any, Any], Awaitable[Any]]
ToResponse = Callable[[Any, str], "ApiResponse"]

# The project-wide list: `middleware = [...]` in this file at the top of the steps folder.
PROJECT_FILE = "middleware.py"
_SIGNATURE = "async def mw(req, ctx, next)"


def middleware_list(items: Iterable[Middleware]) -> tuple[Middleware, ...]:
    """`ApiRouteConfig(middleware=...)`'s converter: a list, kept as a tuple."""
    if callable(items) or isinstance(items, str | bytes):
        # tuple() of a lone function fails with "not iterable", which hides the fix.
        raise TypeError(f"middleware must be a list of async functions, e.g. "
                        f"middleware=[{getattr(items, '__name__', 'mw')}], found {items!r:.80}")
    return tuple(items)


def check_middleware(where: Path, items: Sequence[object]) -> tuple[Middleware, ...]:
    """`items` if each is an `async def` taking (req, ctx, next); else LoadError at `where`."""
    for index, item in enumerate(items):
        problem = _problem(item)
        if problem is not None:
            raise LoadError(where, f"middleware[{index}] ({_about(item)}) {problem}")
    checked: tuple[Middleware, ...] = tuple(items)  # type: ignore[arg-type]  # checked above
    return checked


def project_middleware(path: Path, module: Any) -> tuple[Middleware, ...]:
    """The checked `middleware = [...]` of the project's middleware.py."""
    items = getattr(module, "middleware", None)
    if not isinstance(items, list | tuple):
        raise LoadError(path, f"expected `middleware = [...]`, the middleware run before "
                              f"every route's own, found {describe_found(items)}; a helper module "
                              f"of route middleware needs another name")
    return check_middleware(path, items)


def _problem(item: object) -> str | None:
    if not inspect.iscoroutinefunction(item):
        return f"must be `{_SIGNATURE}`, found {describe_found(item)}"
    if not accepts(item, 3):
        return f"must take three arguments (req, ctx, next), found {parameter_names(item)}"
    return None


def _about(item: object) -> str:
    file = defined_in(item)
    line = getattr(getattr(item, "__code__", None), "co_firstlineno", None)
    name = getattr(item, "__qualname__", None) or type(item).__name__
    return f"{name}, {file}:{line}" if file and line else name


def defined_in(item: object) -> Path | None:
    """The file a middleware function was written in, if it has one."""
    code = getattr(inspect.unwrap(item), "__code__", None)  # type: ignore[arg-type]
    return None if code is None else Path(code.co_filename)


def middleware_name(item: object) -> str:
    """What the workbench and OpenAPI call a middleware: its function's name."""
    return str(getattr(item, "__name__", None) or type(item).__name__)


def compose(middleware: Sequence[Middleware], handler: Call, to_response: ToResponse) -> Call:
    """One call running `middleware` in order around `handler` (the first outermost).

    Built once per route. Every layer answers an ApiResponse, so a middleware can read
    and change what `next()` gives it whether the handler returned one or the dict form."""

    async def innermost(req: Any, ctx: Any) -> ApiResponse:
        return to_response(await handler(req, ctx), "handler")

    call: Call = innermost
    for mw in reversed(middleware):
        call = _layer(mw, call, to_response)
    return call


def _layer(mw: Middleware, inner: Call, to_response: ToResponse) -> Call:
    who = f"middleware {middleware_name(mw)!r}"

    async def layer(req: Any, ctx: Any) -> ApiResponse:
        async def next_() -> ApiResponse:
            answer: ApiResponse = await inner(req, ctx)
            return answer

        return to_response(await mw(req, ctx, next_), who)

    return layer
