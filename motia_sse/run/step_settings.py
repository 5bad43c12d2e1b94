"""A step's queue settings: its own where its config sets them, else the server's flags."""

from __future__ import annotations

import attrs

from motia_sse.queue.base import RetryPolicy
from motia_sse.run.config import CronConfig, EventConfig, StepConfig
from motia_sse.settings import Settings


@attrs.frozen
class StepDefaults:
    """The server-wide values a step's own settings override."""

    # Attempts and back-off of a failing event (--max-attempts, --retry-backoff).
    policy: RetryPolicy = attrs.field(factory=RetryPolicy)
    # Seconds a handler may run before it is cancelled (--handler-timeout); None: no limit.
    timeout: float | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> StepDefaults:
        """The defaults the flags (or environment) set."""
        return cls(RetryPolicy(settings.max_attempts, settings.retry_backoff),
                   settings.handler_timeout)


def retry_policy(config: StepConfig, defaults: StepDefaults) -> RetryPolicy:
    """How often the step's failing handler is tried, and how far apart."""
    if not isinstance(config, EventConfig | CronConfig):
        return defaults.policy
    # A cron step's next tick is its retry: one attempt unless the step asks for more.
    fallback = 1 if isinstance(config, CronConfig) else defaults.policy.max_attempts
    return attrs.evolve(
        defaults.policy,
        max_attempts=fallback if config.max_attempts is None else config.max_attempts,
        backoff=defaults.policy.backoff if config.backoff is None else config.backoff)


def handler_timeout(config: StepConfig, defaults: StepDefaults) -> float | None:
    """Seconds the step's handler may run before it is cancelled; None: no limit."""
    own = config.timeout if isinstance(config, EventConfig | CronConfig) else None
    return defaults.timeout if own is None else own


def concurrency(config: StepConfig) -> int | None:
    """Handlers of the step allowed at once in one process; None: only the global limit."""
    return config.concurrency if isinstance(config, EventConfig) else None
