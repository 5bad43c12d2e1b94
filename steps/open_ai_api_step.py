"""POST /open-ai: create an empty message item and ask the model to fill it."""

import attrs
from open_ai_stream import OpenAiMessage

from motia_sse import ApiRequest, ApiResponse, ApiRouteConfig, FlowContext


@attrs.frozen
class Prompt:
    message: str


config = ApiRouteConfig(
    name="OpenAiApi",
    description="Call OpenAI; the answer streams into /streams/openai/<trace id>/message",
    path="/open-ai",
    method="POST",
    emits=["openai-prompt"],
    flows=["open-ai"],
    body_schema=Prompt,
    response_schema={200: OpenAiMessage},
)


async def handler(req: ApiRequest[Prompt], ctx: FlowContext) -> ApiResponse:
    ctx.logger.info("received prompt", message=req.body.message)
    # An empty item now, so the caller can open its feed before the first token.
    item = await ctx.streams.openai.set(ctx.trace_id, "message", OpenAiMessage(message=""))
    await ctx.emit("openai-prompt", Prompt(message=req.body.message))
    return ApiResponse(status=200, body=item)
