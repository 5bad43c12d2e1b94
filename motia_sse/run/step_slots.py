"""Handlers running per step, and the steps at their `concurrency` limit."""

from __future__ import annotations

from collections import Counter

import attrs


@attrs.define
class StepSlots:
    """Counts each step's running handlers; `full` names the steps at their limit.

    The worker counts a delivery when it takes it off the queue, before its task starts,
    and asks the queue to skip the `full` steps: a step's backlog then stays queued
    instead of holding handler slots that other steps' events could use."""

    # Live: the queue's get() re-reads it on each look.
    full: set[str] = attrs.field(factory=set)
    _running: Counter[str] = attrs.field(factory=Counter)

    def take(self, step: str, limit: int | None) -> None:
        """One more handler of `step` runs; `limit`: the step's concurrency, if any."""
        self._running[step] += 1
        self._update(step, limit)

    def release(self, step: str, limit: int | None) -> bool:
        """One of the step's handlers ended; whether the step has room again."""
        self._running[step] -= 1
        was_full = step in self.full
        self._update(step, limit)
        if not self._running[step]:
            del self._running[step]
        return was_full and step not in self.full

    def _update(self, step: str, limit: int | None) -> None:
        # The limit is the step's as loaded now: a reload's new limit counts at once.
        if limit is not None and self._running[step] >= limit:
            self.full.add(step)
        else:
            self.full.discard(step)
