"""POST /bench/stream-answer/<group>: start streaming a model's answer into the group's
answer item (bench/steps/stream_answer_step.py), for (b) at scale, the seed's way."""

from typing import Any

import attrs

from motia_sse import ApiRequest, ApiResponse, ApiRouteConfig, FlowContext


@attrs.frozen
class AnswerPrompt:
    # The group whose `item` the answer grows in.
    group: str


config = ApiRouteConfig(
    name="StreamAnswer",
    description="Stream a chat completion into a bench answer",
    path="/bench/stream-answer/{group}",
    method="POST",
    emits=["bench-answer"],
    flows=["bench"],
)


async def handler(req: ApiRequest[Any], ctx: FlowContext) -> ApiResponse:
    await ctx.emit("bench-answer", AnswerPrompt(group=req.path_params["group"]))
    return ApiResponse(status=202, body={"group": req.path_params["group"]})
