"""`/healthz` and `/readyz`, for load balancers and orchestrators; served in every mode.

They say whether the process serves and whether its store answers, nothing about the
data. `/readyz` turns 503 as shutdown begins (aiohttp's on_shutdown), so that a load
balancer stops sending before the process goes.
"""

from __future__ import annotations

import attrs
from aiohttp import web

from motia_sse.http.responses import error_response, json_response
from motia_sse.runtime import RUNTIME


@attrs.define
class Readiness:
    """Whether the server has begun to shut down."""

    stopping: bool = False

    async def stop(self, app: web.Application) -> None:
        """on_shutdown: from now on, not ready."""
        self.stopping = True


READINESS = web.AppKey("motia_sse.readiness", Readiness)


def add_health(app: web.Application) -> None:
    """Serve `/healthz` and `/readyz`; turn `/readyz` 503 when shutdown begins."""
    app[READINESS] = Readiness()
    app.on_shutdown.append(app[READINESS].stop)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)


async def _healthz(request: web.Request) -> web.Response:
    """200 while the process serves requests."""
    return json_response(200, {"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    """200 if the store (and, on Redis, Redis) answers; 503 with the reason if not,
    or once shutdown has begun."""
    if request.app[READINESS].stopping:
        return error_response(503, "not ready", ["shutting down"])
    problem = await request.app[RUNTIME].ready()
    if problem is not None:
        return error_response(503, "not ready", [problem], {"Retry-After": "5"})
    return json_response(200, {"status": "ready"})
