"""Pages on other origins (`--cors-origin`): CORS headers through aiohttp-cors.

Off (no origins), nothing is registered: no response hook, no OPTIONS route, so a
request costs what it did. On, every route but the workbench's (`/`, `/__motia/*`)
answers a preflight `OPTIONS` with 204 and the allowed methods and headers, and its
answers carry `Access-Control-Allow-Origin` for a listed origin: API steps, feeds
(aiohttp-cors adds the headers when a response is prepared, which is when a feed
sends its own) and `/static/motia-stream.js` (a page imports it from here).

`dev`'s swappable API routes sit behind one catch-all route (in_place_reload.py);
aiohttp-cors refuses to add its OPTIONS route beside an any-method route, so that
resource gets it first, through `allow_cross_origin`, and its route after.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp_cors
from aiohttp import hdrs, web
from aiohttp_cors.urldispatcher_router_adapter import ResourcesUrlDispatcherRouterAdapter

from motia_sse.http.responses import TRACE_HEADER
from motia_sse.settings import Settings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ALLOW_HEADERS = ("Content-Type", "Authorization", "Last-Event-ID")
ALLOW_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
EXPOSE_HEADERS = (TRACE_HEADER, "Retry-After")
# Seconds a browser may reuse a preflight's answer (Chromium caps it at 7200).
MAX_AGE = 600
# What the browser sends as `Origin`: scheme://host[:port], nothing after.
_ORIGIN = re.compile(r"([a-z][a-z0-9+.-]*)://([^\s/?#@:\[\]]+|\[[0-9a-f:.]+\])(?::(\d{1,5}))?",
                     re.IGNORECASE)
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def parse_origins(text: str) -> tuple[str, ...]:
    """`--cors-origin`: origins, comma-separated, as browsers write them; `*` is any."""
    origins: list[str] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        origin = part if part == "*" else _origin(part)
        if origin not in origins:
            origins.append(origin)
    if not origins:
        raise ValueError(f"expected an origin like https://app.example.com, got {text!r}")
    return tuple(origins)


def _origin(text: str) -> str:
    match = _ORIGIN.fullmatch(text)
    if match is None or not 0 < int(match[3] or 80) < 65536:
        raise ValueError(f"{text!r} is not an origin: expected scheme://host[:port] with no "
                         "path (not even a final '/'), like https://app.example.com:8443")
    scheme, host, port = match[1].lower(), match[2].lower(), match[3]
    # The browser leaves the scheme's default port out, so the list must too.
    shown_port = f":{int(port)}" if port and str(int(port)) != _DEFAULT_PORTS.get(scheme) else ""
    return f"{scheme}://{host}{shown_port}"


def check_cors(origins: tuple[str, ...], credentials: bool) -> None:
    """ValueError for credentials without listed origins: none, or `*` (then any site
    could read the answers with its visitors' cookies)."""
    if credentials and not origins:
        raise ValueError("--cors-credentials needs --cors-origin: name the origins whose "
                         "pages may send cookies")
    if credentials and "*" in origins:
        raise ValueError("--cors-origin '*' cannot go with --cors-credentials: any site "
                         "could read answers with its visitors' cookies; list the origins")


class _Adapter(ResourcesUrlDispatcherRouterAdapter):
    """aiohttp-cors's router adapter, with preflights answered 204 and listing every
    allowed method and header (aiohttp-cors: 200, echoing what the browser asked)."""

    def add_preflight_handler(self, routing_entity: Any, handler: Any,
                              webview: bool = False) -> None:  # the abstract signature
        super().add_preflight_handler(routing_entity, _no_content(handler))


def _no_content(preflight: Handler) -> Handler:
    async def answer(request: web.Request) -> web.StreamResponse:
        allowed = await preflight(request)  # HTTPForbidden for what is not allowed
        headers = {name: value for name, value in allowed.headers.items()
                   if name.lower().startswith("access-control-")}
        headers[hdrs.ACCESS_CONTROL_ALLOW_METHODS] = ", ".join(ALLOW_METHODS)
        headers[hdrs.ACCESS_CONTROL_ALLOW_HEADERS] = ", ".join(ALLOW_HEADERS)
        return web.Response(status=204, headers=headers)

    return answer


CORS = web.AppKey("motia_sse.cors", aiohttp_cors.CorsConfig)


def add_cors(app: web.Application, settings: Settings) -> None:
    """Let the listed origins' pages in; call after the routes, before a catch-all."""
    if not settings.cors_origins:
        return
    # Settings made in code get the checks the command line makes.
    origins = parse_origins(",".join(settings.cors_origins))
    check_cors(origins, settings.cors_credentials)
    options = aiohttp_cors.ResourceOptions(  # type: ignore[no-untyped-call]  # untyped __new__
        allow_credentials=settings.cors_credentials, expose_headers=EXPOSE_HEADERS,
        allow_headers=ALLOW_HEADERS, allow_methods=ALLOW_METHODS, max_age=MAX_AGE)
    defaults = {origin: options for origin in origins}
    adapter = _Adapter(app.router, defaults)
    app[CORS] = aiohttp_cors.CorsConfig(app, defaults=defaults, router_adapter=adapter)
    for resource in list(app.router.resources()):
        if _crosses(resource):
            allow_cross_origin(app, resource)

    async def vary(request: web.Request, response: web.StreamResponse) -> None:
        # The answer depends on Origin: a cache must not hand one origin's to another.
        if adapter.is_cors_enabled_on_request(request):
            response.headers.add(hdrs.VARY, "Origin")

    app.on_response_prepare.append(vary)


def allow_cross_origin(app: web.Application, resource: web.AbstractResource) -> None:
    """Answer preflights on `resource` and add CORS headers to its answers, if CORS is on."""
    if CORS in app:
        app[CORS].add(resource)


def _crosses(resource: web.AbstractResource) -> bool:
    """Everything but the workbench's own page and introspection, which stay same-origin."""
    path = resource.canonical
    return path != "/" and path != "/__motia" and not path.startswith("/__motia/")
