"""`ctx.state` on every backend: get, set, delete, get_group, clear, from real steps."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from aiohttp.test_utils import TestClient

from motia_sse import Settings
from tests.conftest import ClientFactory, WriteSteps

STEP = '''
from typing import Any
from motia_sse import ApiRequest, ApiResponse, ApiRouteConfig, FlowContext

config = ApiRouteConfig(name="State", path="/state/{op}/{group}", method="POST")

async def handler(req: ApiRequest[Any], ctx: FlowContext) -> ApiResponse:
    op, group, body = req.path_params["op"], req.path_params["group"], req.body or {}
    if op == "set":
        result = await ctx.state.set(group, body["key"], body["value"])
    elif op == "get":
        result = await ctx.state.get(group, body["key"])
    elif op == "delete":
        result = await ctx.state.delete(group, body["key"])
    elif op == "group":
        result = await ctx.state.get_group(group)
    else:
        result = await ctx.state.clear(group)
    return ApiResponse(status=200, body={"result": result})
'''


@pytest.fixture(name="state_client", params=["memory", "sqlite", "redis"])
async def _state_client(request: pytest.FixtureRequest, write_steps: WriteSteps,
                        make_client: ClientFactory, settings: Settings) -> TestClient[Any, Any]:
    """A project with one API step that drives ctx.state, on each backend."""
    steps = write_steps({"state_step.py": STEP}, "state_steps")
    chosen = attrs.evolve(settings, steps_dir=steps, store="sqlite")
    if request.param == "memory":
        chosen = attrs.evolve(chosen, store="memory")
    elif request.param == "redis":
        chosen = request.getfixturevalue("redis_settings")
        chosen = attrs.evolve(chosen, steps_dir=steps)
    return await make_client(chosen)


async def call(client: TestClient[Any, Any], op: str, group: str, **body: Any) -> Any:
    """Run one state operation through the step; its result."""
    response = await client.post(f"/state/{op}/{group}", json=body)
    assert response.status == 200, await response.text()
    return (await response.json())["result"]


async def test_state_round_trip(state_client: TestClient[Any, Any]) -> None:
    """Values of any JSON type by group and key; groups are apart; clear empties one."""
    assert await call(state_client, "get", "t1", key="a") is None
    assert await call(state_client, "set", "t1", key="b", value={"n": [1, 2]}) == {"n": [1, 2]}
    await call(state_client, "set", "t1", key="a", value="text")
    await call(state_client, "set", "t2", key="a", value=3)
    assert await call(state_client, "get", "t1", key="a") == "text"
    assert await call(state_client, "group", "t1") == [{"n": [1, 2]}, "text"], "set order"
    assert await call(state_client, "delete", "t1", key="a") == "text"
    assert await call(state_client, "get", "t1", key="a") is None
    assert await call(state_client, "delete", "t1", key="a") is None
    await call(state_client, "clear", "t1")
    assert await call(state_client, "group", "t1") == []
    assert await call(state_client, "group", "t2") == [3]


async def test_state_is_not_a_stream(state_client: TestClient[Any, Any]) -> None:
    """State is not reachable as a feed."""
    response = await state_client.get("/streams/__state/t1/a")
    assert response.status == 404
