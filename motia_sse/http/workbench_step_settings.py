"""A queued step's settings as the workbench shows them: in effect, and which are its own."""

from __future__ import annotations

from typing import Any

from motia_sse.run.config import CronConfig, EventConfig
from motia_sse.run.step_settings import StepDefaults, concurrency, handler_timeout, retry_policy

# The config fields a step may set; left None, the server's default holds (for
# concurrency: no limit of the step's own).
_OWN_FIELDS = ("max_attempts", "backoff", "timeout", "concurrency")


def queue_settings(config: EventConfig | CronConfig, defaults: StepDefaults) -> dict[str, Any]:
    """Max attempts, back-off (seconds before the first retry), handler timeout and
    concurrency in effect for the step, and `own`: those its config sets itself."""
    policy = retry_policy(config, defaults)
    return {
        "max_attempts": policy.max_attempts,
        "backoff": policy.backoff,
        "timeout": handler_timeout(config, defaults),
        "concurrency": concurrency(config),
        # A cron step has no concurrency field: getattr's None.
        "own": [name for name in _OWN_FIELDS if getattr(config, name, None) is not None],
    }
