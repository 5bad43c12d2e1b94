"""`/metrics`: the server's counts in Prometheus's text format (`dev`, or `start --metrics`).

With `--workers N`, the worker a scrape reaches adds up every worker's counts
(metrics/peers.py), so one scrape sees the whole server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from motia_sse.metrics.collector import ServerCollector
from motia_sse.metrics.merge import merge
from motia_sse.metrics.peers import Peers
from motia_sse.runtime import RUNTIME

REGISTRY = web.AppKey("motia_sse.metrics_registry", CollectorRegistry)
PEERS = web.AppKey("motia_sse.metrics_peers", Peers)
HEADERS = {"Content-Type": CONTENT_TYPE_LATEST}


def add_metrics(app: web.Application) -> None:
    """Serve `/metrics` if the settings ask for it; nothing at all if not."""
    runtime = app[RUNTIME]
    if not runtime.settings.metrics:
        return
    # A registry of the app's own: the process-wide one would mix apps (tests run many).
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServerCollector(runtime))
    app[REGISTRY] = registry
    app.router.add_get("/metrics", _metrics)
    if runtime.settings.metrics_peers is not None:
        app[PEERS] = Peers(runtime.settings.metrics_peers)
        app.cleanup_ctx.append(_listen_to_peers)


async def _metrics(request: web.Request) -> web.Response:
    """Every `motia_*` metric of this process, or of all workers added up."""
    own = generate_latest(request.app[REGISTRY])
    if PEERS in request.app:
        others = await request.app[PEERS].others()
        if others:
            own = merge([own.decode(), *others])
    return web.Response(body=own, headers=HEADERS)


async def _listen_to_peers(app: web.Application) -> AsyncIterator[None]:
    peers, registry = app[PEERS], app[REGISTRY]
    await peers.listen(lambda: generate_latest(registry))
    yield
    await peers.close()
