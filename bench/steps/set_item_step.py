"""POST /bench/items/<group>/<id>: set the item to the body; its feeds get it."""

from bench_stream import Tick

from motia_sse import ApiRequest, ApiResponse, ApiRouteConfig, FlowContext

config = ApiRouteConfig(
    name="SetItem",
    description="Set a bench item",
    path="/bench/items/{group}/{item}",
    method="POST",
    body_schema=Tick,
    flows=["bench"],
)


async def handler(req: ApiRequest[Tick], ctx: FlowContext) -> ApiResponse:
    item = await ctx.streams.bench.set(req.path_params["group"], req.path_params["item"],
                                       req.body)
    return ApiResponse(status=200, body=item)
