"""The Prometheus collector: reads one server process's counts when `/metrics` is scraped.

Nothing here runs per request or per frame: the counts are plain ints kept by the
feeds, the hub, the feed room and `Meters`, turned into metric families only at scrape time.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from motia_sse.metrics.meters import BUCKETS, Meters, Timings
from motia_sse.runtime import Runtime
from motia_sse.streams.feed_room import FeedStats

# The buckets' `le` labels, as Prometheus writes them.
_BOUNDS = (*(repr(bound) for bound in BUCKETS), "+Inf")


class ServerCollector(Collector):
    """Every `motia_*` metric of one server process."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def collect(self) -> Iterator[Metric]:
        """The metric families, read now."""
        runtime = self._runtime
        yield GaugeMetricFamily("motia_server_processes",
                                "Server processes whose counts this scrape adds up", 1)
        yield from _feeds(runtime.feeds.stats())
        if runtime.meters is not None:
            yield from _api(runtime.meters)
            yield from _events(runtime.meters, runtime.events_in_flight)


def _feeds(stats: FeedStats) -> Iterator[Metric]:
    opened = GaugeMetricFamily("motia_feeds_open", "SSE feeds open now, by kind of URL "
                               "(logs: the workbench's log feeds)", labels=["kind"])
    for kind, count in stats.open.items():
        opened.add_metric([kind], count)
    yield opened
    yield GaugeMetricFamily("motia_feeds_lagging", "Open feeds whose client is behind: "
                            "frames wait for it, or its socket buffer is full", stats.lagging)
    yield GaugeMetricFamily("motia_feed_subscriptions",
                            "Items and groups the open stream feeds watch", stats.subscriptions)
    yield CounterMetricFamily("motia_feed_frames_written", "SSE frames written to stream "
                              "feeds: events, the retry line, heartbeats", stats.frames)
    yield CounterMetricFamily("motia_feed_bytes_written", "SSE bytes written to stream "
                              "feeds (HTTP chunk framing not counted)", stats.bytes_written)
    yield CounterMetricFamily("motia_feed_frames_conflated", "Frames of lagging feeds "
                              "replaced by a newer snapshot before the client read them",
                              stats.conflated)
    yield CounterMetricFamily("motia_feed_deltas_written", "Delta frames written to feeds "
                              "that asked for them (delta=1), each in place of an item's "
                              "whole text", stats.deltas)
    refused = CounterMetricFamily("motia_feeds_refused", "Feeds refused, by reason",
                                  labels=["reason"])
    for reason, count in sorted(stats.refused.items()):
        refused.add_metric([reason], count)
    yield refused


def _api(meters: Meters) -> Iterator[Metric]:
    requests = CounterMetricFamily("motia_api_requests", "API step answers, by route and "
                                   "status", labels=["method", "route", "status"])
    seconds = HistogramMetricFamily("motia_api_request_duration_seconds",
                                    "Time from an API request's headers to its answer",
                                    labels=["method", "route"])
    for (method, route), meter in sorted(meters.routes.items()):
        for status, count in sorted(meter.statuses.items()):
            requests.add_metric([method, route, str(status)], count)
        _observe(seconds, [method, route], meter.timings)
    yield requests
    yield seconds


def _events(meters: Meters, in_flight: int) -> Iterator[Metric]:
    for name, about, counts in (
            ("motia_events_queued", "Events queued for a subscribing step", meters.queued),
            ("motia_events_retried", "Failed event handler runs that will be retried",
             meters.retried),
            ("motia_events_dead_lettered", "Events whose handler failed its last attempt",
             meters.dead_lettered)):
        family = CounterMetricFamily(name, about, labels=["step"])
        for step, count in sorted(counts.items()):
            family.add_metric([step], count)
        yield family
    yield GaugeMetricFamily("motia_events_in_flight", "Event handlers running now", in_flight)
    seconds = HistogramMetricFamily("motia_handler_duration_seconds",
                                    "Event and cron handler run times, by step",
                                    labels=["kind", "step"])
    for (kind, step), timings in sorted(meters.handlers.items()):
        _observe(seconds, [kind, step], timings)
    yield seconds
    runs = CounterMetricFamily("motia_cron_runs", "Cron handler runs, by step and outcome",
                               labels=["step", "outcome"])
    for (step, outcome), count in sorted(meters.cron_runs.items()):
        runs.add_metric([step, outcome], count)
    yield runs


def _observe(family: HistogramMetricFamily, labels: list[str], timings: Timings) -> None:
    cumulative, buckets = 0, []
    for bound, count in zip(_BOUNDS, timings.counts, strict=True):
        cumulative += count
        buckets.append((bound, cumulative))
    family.add_metric(labels, buckets, timings.total)
