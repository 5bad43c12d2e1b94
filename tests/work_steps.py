"""Step files for tests that run real server processes: cells to set, work to emit."""

from __future__ import annotations

# {file name: source}, for the write_steps fixture.
WORK_STEPS = {
    "cluster_stream.py": '''
import attrs
from motia_sse import StreamConfig

@attrs.frozen
class Cell:
    value: int
    pid: int = 0

config = StreamConfig(name="cells", schema=Cell)
''',
    "set_api_step.py": '''
import os
import attrs
from cluster_stream import Cell
from motia_sse import ApiRequest, ApiResponse, ApiRouteConfig, FlowContext

@attrs.frozen
class Value:
    value: int

config = ApiRouteConfig(name="SetCell", path="/cells/{group}/{id}", method="PUT",
                        body_schema=Value)

async def handler(req: ApiRequest[Value], ctx: FlowContext) -> ApiResponse:
    item = await ctx.streams.cells.set(req.path_params["group"], req.path_params["id"],
                                       Cell(value=req.body.value, pid=os.getpid()))
    return ApiResponse(status=200, body={"version": item.version})
''',
    "delete_api_step.py": '''
from typing import Any
from motia_sse import ApiRequest, ApiResponse, ApiRouteConfig, FlowContext

config = ApiRouteConfig(name="DeleteCell", path="/cells/{group}/{id}", method="DELETE")

async def handler(req: ApiRequest[Any], ctx: FlowContext) -> ApiResponse:
    deleted = await ctx.streams.cells.delete(req.path_params["group"], req.path_params["id"])
    return ApiResponse(status=200, body={"deleted": deleted})
''',
    "emit_api_step.py": '''
import attrs
from motia_sse import ApiRequest, ApiResponse, ApiRouteConfig, FlowContext

@attrs.frozen
class Work:
    n: int
    mode: str = "ok"

config = ApiRouteConfig(name="Emit", path="/work", method="POST", body_schema=Work,
                        emits=["work"])

async def handler(req: ApiRequest[Work], ctx: FlowContext) -> ApiResponse:
    await ctx.emit("work", req.body)
    return ApiResponse(status=202, body={})
''',
    "work_step.py": '''
import asyncio
import os
import uuid
from cluster_stream import Cell
from emit_api_step import Work
from motia_sse import EventConfig, FlowContext

config = EventConfig(name="DoWork", subscribes=["work"], input=Work)

async def handler(input: Work, ctx: FlowContext) -> None:
    if input.mode == "fail":
        raise RuntimeError(f"work {input.n} always fails")
    if input.mode == "nap":
        await ctx.streams.cells.set("started", str(input.n), Cell(value=input.n, pid=os.getpid()))
        await asyncio.sleep(0.5)
    if input.mode == "slow" and os.environ.get("SLOW_WORKER"):
        await ctx.streams.cells.set("started", str(input.n), Cell(value=input.n, pid=os.getpid()))
        await asyncio.sleep(3600)
    await ctx.streams.cells.set("runs", f"{input.n}-{uuid.uuid4().hex}",
                                Cell(value=input.n, pid=os.getpid()))
''',
}


# A stream of notes `{"text": str}`, for the tests' own small projects.
NOTES_STREAM = '''
import attrs
from motia_sse import StreamConfig

@attrs.frozen
class Note:
    text: str

config = StreamConfig(name="notes", schema=Note)
'''
