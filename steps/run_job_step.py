"""Run a job step by step, reporting progress into its stream item."""

import asyncio

from progress_stream import JobProgress
from start_job_api_step import JobRequest

from motia_sse import EventConfig, FlowContext

config = EventConfig(
    name="RunJob",
    description="Do the job's work, one step at a time",
    subscribes=["job-started"],
    input=JobRequest,
    flows=["jobs"],
)


async def handler(input: JobRequest, ctx: FlowContext) -> None:
    for done in range(1, input.steps + 1):
        await asyncio.sleep(input.delay)
        status = "done" if done == input.steps else "running"
        await ctx.streams.progress.set(
            ctx.trace_id, "job", JobProgress(status=status, done=done, total=input.steps)
        )
    ctx.logger.info("job finished", steps=input.steps)
