"""POST /bench/answers/<group>/<id>: set the answer to the body; its feeds get it."""

from answer_stream import Answer

from motia_sse import ApiRequest, ApiResponse, ApiRouteConfig, FlowContext

config = ApiRouteConfig(
    name="SetAnswer",
    description="Set a bench answer",
    path="/bench/answers/{group}/{item}",
    method="POST",
    body_schema=Answer,
    flows=["bench"],
)


async def handler(req: ApiRequest[Answer], ctx: FlowContext) -> ApiResponse:
    item = await ctx.streams.answer.set(req.path_params["group"], req.path_params["item"],
                                        req.body)
    return ApiResponse(status=200, body=item)
