"""POST /jobs: start a job whose progress streams into /streams/progress/<trace id>/job."""

import attrs
from progress_stream import JobProgress

from motia_sse import ApiRequest, ApiResponse, ApiRouteConfig, FlowContext


@attrs.frozen
class JobRequest:
    steps: int = 20
    # Seconds each step takes.
    delay: float = 0.25


config = ApiRouteConfig(
    name="StartJob",
    description="Start a job; watch its progress item update live",
    path="/jobs",
    method="POST",
    emits=["job-started"],
    flows=["jobs"],
    body_schema=JobRequest,
    response_schema={200: JobProgress},
)


async def handler(req: ApiRequest[JobRequest], ctx: FlowContext) -> ApiResponse:
    if not 1 <= req.body.steps <= 10_000 or not 0 <= req.body.delay <= 10:
        return ApiResponse(status=400, body={
            "error": "invalid body",
            "details": ["steps must be 1..10000 @ $.steps", "delay must be 0..10 @ $.delay"],
        })
    item = await ctx.streams.progress.set(
        ctx.trace_id, "job", JobProgress(status="queued", done=0, total=req.body.steps)
    )
    await ctx.emit("job-started", req.body)
    return ApiResponse(status=200, body=item)
