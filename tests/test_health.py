"""/healthz and /readyz, as a load balancer polls them: in every mode, on every store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from aiohttp.test_utils import TestClient

from motia_sse import Settings
from tests.conftest import ClientFactory, RedisServer


@pytest.fixture(name="start_settings", params=["sqlite", "memory"])
def _start_settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """`start` as deployed (no workbench, no metrics), on each embedded store."""
    return attrs.evolve(settings, store=request.param)


async def test_healthy_and_ready(make_client: ClientFactory, start_settings: Settings) -> None:
    """Both answer 200 with a small JSON status, and say nothing about the data."""
    client = await make_client(start_settings)
    health = await client.get("/healthz")
    assert (health.status, await health.json()) == (200, {"status": "ok"})
    ready = await client.get("/readyz")
    assert (ready.status, await ready.json()) == (200, {"status": "ready"})
    assert (await client.get("/metrics")).status == 404, "start serves no /metrics unasked"


async def test_not_ready_once_shutdown_begins(client: TestClient[Any, Any]) -> None:
    """From aiohttp's on_shutdown on, /readyz is 503 so that a balancer drains the process;
    /healthz stays 200 (the process still serves)."""
    assert (await client.get("/readyz")).status == 200
    await client.app.shutdown()
    ready = await client.get("/readyz")
    assert ready.status == 503
    assert await ready.json() == {"error": "not ready", "details": ["shutting down"]}
    assert (await client.get("/healthz")).status == 200


@pytest.fixture(name="own_redis")
def _own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, to stop and start."""
    redis = RedisServer(tmp_path / "own-redis").start()
    yield redis
    redis.stop()


async def test_not_ready_while_redis_is_down(make_client: ClientFactory, settings: Settings,
                                             own_redis: RedisServer) -> None:
    """Redis stops: 503 with the reason (and no address); back: ready again."""
    client = await make_client(attrs.evolve(settings, redis_url=own_redis.url))
    assert (await client.get("/readyz")).status == 200
    own_redis.stop()
    down = await client.get("/readyz")
    assert down.status == 503
    assert down.headers["Retry-After"] == "5"
    body = await down.json()
    assert body["error"] == "not ready"
    [reason] = body["details"]
    assert reason.startswith("Redis does not answer")
    assert str(own_redis.port) not in reason
    assert (await client.get("/healthz")).status == 200, "the process itself is fine"
    own_redis.start()
    assert (await client.get("/readyz")).status == 200
