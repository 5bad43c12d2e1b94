"""Adding up the expositions of several worker processes into one."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

Key = tuple[str, tuple[tuple[str, str], ...]]


def merge(expositions: Iterable[str]) -> bytes:
    """One exposition whose every sample is the sum of that sample in `expositions`.

    Every `motia_*` metric adds up: counters, gauges of what is open now, histogram
    buckets, counts and sums."""
    families: dict[str, Metric] = {}
    sums: dict[str, dict[Key, float]] = {}
    for text in expositions:
        for family in text_string_to_metric_families(text):
            if family.name not in families:
                families[family.name] = Metric(family.name, family.documentation,
                                               family.type, family.unit)
                sums[family.name] = {}
            kept = sums[family.name]
            for sample in family.samples:
                key = (sample.name, tuple(sample.labels.items()))
                kept[key] = kept.get(key, 0.0) + sample.value
    for name, family in families.items():
        for (sample_name, labels), value in sums[name].items():
            family.add_sample(sample_name, dict(labels), value)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(list(families.values())))
    return generate_latest(registry)


class _Fixed(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)
