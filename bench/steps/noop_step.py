"""POST /bench/noop: the most trivial API step, for requests per second."""

import attrs

from motia_sse import ApiRequest, ApiResponse, ApiRouteConfig, FlowContext


@attrs.frozen
class Ping:
    n: int


config = ApiRouteConfig(
    name="Noop",
    description="Validate a tiny body, answer a constant",
    path="/bench/noop",
    method="POST",
    body_schema=Ping,
    flows=["bench"],
)


async def handler(req: ApiRequest[Ping], ctx: FlowContext) -> ApiResponse:
    return ApiResponse(status=200, body={"ok": True})
