"""The counts the server keeps for `/metrics`: plain ints, read at scrape time.

Each is bumped by the code doing the work (one `+=` or a bisect), never through a
Prometheus metric object: those take a lock per call. The collector
(`metrics/collector.py`) turns them into metric families when scraped.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import Counter

import attrs

# Upper bounds, in seconds, of the duration buckets: API answers take well under a
# millisecond, an event handler calling a model may take minutes.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
           1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


@attrs.define
class Timings:
    """A histogram of durations: a count per bucket (the last past every bound) and a sum."""

    counts: list[int] = attrs.Factory(lambda: [0] * (len(BUCKETS) + 1))
    total: float = 0.0

    def observe(self, seconds: float) -> None:
        """Count one duration."""
        self.counts[bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds


@attrs.define
class RouteMeter:
    """One API route's answers: how many of each status, and how long they took."""

    statuses: Counter[int] = attrs.Factory(Counter)
    timings: Timings = attrs.Factory(Timings)

    def observe(self, status: int, started: float) -> None:
        """Count an answer with `status` to a request that began at perf_counter `started`."""
        self.timings.observe(time.perf_counter() - started)
        self.statuses[status] += 1


@attrs.define
class Meters:
    """Everything one server process counts, by route and by step."""

    # (method, path pattern) -> the route's answers.
    routes: dict[tuple[str, str], RouteMeter] = attrs.Factory(dict)
    # ("event" or "cron", step) -> how long its handler runs took.
    handlers: dict[tuple[str, str], Timings] = attrs.Factory(dict)
    # By subscribing step: deliveries queued, retried after a failure, dead-lettered.
    queued: Counter[str] = attrs.Factory(Counter)
    retried: Counter[str] = attrs.Factory(Counter)
    dead_lettered: Counter[str] = attrs.Factory(Counter)
    # (step, "ok" or "failed") -> cron runs.
    cron_runs: Counter[tuple[str, str]] = attrs.Factory(Counter)

    def route(self, method: str, path: str) -> RouteMeter:
        """The meter of one API route, made on first use (a reload keeps the counts)."""
        return self.routes.setdefault((method, path), RouteMeter())

    def handler(self, kind: str, step: str) -> Timings:
        """The run times of one event or cron step's handler."""
        return self.handlers.setdefault((kind, step), Timings())
