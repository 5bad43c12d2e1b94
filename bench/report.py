"""Medians over runs, ratios against the same-run baseline, the table."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from bench.scenarios import Pair, Result

# Utilisation (cores) from which a process counts as the one that saturates.
BUSY = 0.85
CORES = 2.0


@attrs.frozen
class Target:
    """A goal for a ratio motia_sse / baseline."""

    at_least: float | None = None
    at_most: float | None = None

    def met(self, ratio: float) -> bool:
        """Whether `ratio` meets it."""
        if math.isnan(ratio):
            return False
        if self.at_least is not None and ratio < self.at_least:
            return False
        return self.at_most is None or ratio <= self.at_most

    def __str__(self) -> str:
        return f">= {self.at_least:g}" if self.at_least is not None else f"<= {self.at_most:g}"


@attrs.frozen
class Metric:
    """A figure read from each side's result."""

    label: str
    motia: Callable[[Result], float]
    baseline: Callable[[Result], float]
    digits: int = 1
    target: Target | None = None


def median(values: Sequence[float]) -> float:
    """Median of the values that are numbers (nan if none)."""
    clean = [v for v in values if not math.isnan(v)]
    return statistics.median(clean) if clean else float("nan")


# CPU times tick in 1/100 s: shorter windows say nothing about utilisation.
SHORTEST_WINDOW = 0.25


def utilisation(result: Result) -> tuple[list[float], float]:
    """Cores used by each server process and by the client over the measured window."""
    wall = result.get("wall_s") or float("nan")
    if wall < SHORTEST_WINDOW:
        wall = float("nan")
    return ([c / wall for c in result.get("server_cpu_s", [])],
            result.get("client_cpu_s", float("nan")) / wall)


def limit(servers: Sequence[float], client: float, others: float = 0.0,
          softirq: float = 0.0) -> str:
    """Which CPU bounds the figure: a process that keeps a core busy, else the machine
    when its two cores are full (with our processes, the kernel's loopback work and
    other sessions' processes), else nothing but waiting."""
    def known(x: float) -> float:
        return 0.0 if math.isnan(x) else x

    server = max(servers, default=float("nan"))
    if server >= BUSY and client >= BUSY:
        return "server+client CPU"
    if server >= BUSY:
        return "server CPU"
    if client >= BUSY:
        return "client CPU"
    if sum(servers) + known(client) + known(softirq) + known(others) >= CORES * BUSY:
        return "both cores, shared" if known(others) >= 0.3 else "both cores"
    return "neither (waits)"


def _get(name: str) -> Callable[[Result], float]:
    return lambda r: float(r.get(name, float("nan")))


def _cpu_per(count: Callable[[Result], float]) -> Callable[[Result], float]:
    """Server CPU (all server processes) per unit of work, in microseconds: what the
    server spends whichever process limits the rate."""
    def per(result: Result) -> float:
        done = count(result)
        cpu = sum(result.get("server_cpu_s", []))
        return 1e6 * cpu / done if done and cpu else float("nan")
    return per


_per_event = _cpu_per(lambda r: float(r.get("delivered", 0)))


def _versions(r: Result) -> float:
    """Changes each watcher received after its initial snapshot."""
    return float(r.get("delivered", 0)) / float(r.get("subscribers") or 1)


_per_open = _cpu_per(lambda r: float(r.get("subscribers", 0)))
_per_request = _cpu_per(lambda r: float(r.get("requests_per_s", 0) * r.get("wall_s", 0)))

FANOUT = [
    Metric("events/s", _get("events_per_s"), _get("events_per_s"), 0),
    Metric("server us/event", _per_event, _per_event, 1),
    Metric("p50 ms", _get("p50_ms"), _get("p50_ms"), 2),
    Metric("p99 ms", _get("p99_ms"), _get("p99_ms"), 2, Target(at_most=1.5)),
]
FANOUT_TARGET_SIZE = 1000


def metrics(key: str) -> list[Metric]:
    """What the table shows for a scenario key (`a/1000`, `b/0ms`, `c`, ...)."""
    scenario, _, size = key.partition("/")
    if scenario in ("a", "e"):
        found = list(FANOUT)
        if scenario == "a" and size == str(FANOUT_TARGET_SIZE):
            found[0] = attrs.evolve(found[0], target=Target(at_least=0.8))
        if scenario == "e":  # not a target of the issue: shown for comparison
            found = [attrs.evolve(m, target=None) for m in found]
        return found
    if scenario == "b" and size.startswith("answer"):
        return answer_metrics(size.endswith(f" C={FANOUT_TARGET_SIZE}"),
                              size.startswith("answer-posted"))
    if scenario == "b":
        return [Metric("s to full text", _get("motia_s"), _get("fake_s"), 3)]
    if scenario == "c":
        return [Metric("RSS KiB/feed", _get("rss_per_feed_kib"), _get("rss_per_feed_kib"), 1,
                       Target(at_most=1.5)),
                # How fast feeds open (a reconnect storm after a restart), and at what cost.
                Metric("feed opens/s", _get("connect_per_s"), _get("connect_per_s"), 0),
                Metric("server us/open", _per_open, _per_open, 0)]
    if scenario == "d":
        return [Metric("requests/s", _get("requests_per_s"), _get("requests_per_s"), 0,
                       Target(at_least=0.7)),
                Metric("server us/request", _per_request, _per_request, 1),
                Metric("p99 ms", _get("p99_ms"), _get("p99_ms"), 2)]
    raise ValueError(key)


def answer_metrics(at_target: bool, posted: bool) -> list[Metric]:
    """(b) at scale: its "motia" side is delta feeds, its "baseline" side snapshot feeds,
    both motia_sse in the same run (the issue's targets compare the two).

    Streamed as fast as the model sends, snapshot feeds lag behind the load client and
    conflate (versions/watcher shows how many they got), so their bytes measure the
    client; POSTed token by token, every feed gets every version: the bytes target is
    read there. The CPU target is the streamed answer's, the seed's case."""
    return [
        Metric("versions/watcher", _versions, _versions, 0),
        Metric("bytes/watcher", _get("bytes_per_watcher"), _get("bytes_per_watcher"), 0,
               Target(at_most=0.05) if posted else None),
        Metric("server ms/token", _get("server_cpu_per_token_ms"),
               _get("server_cpu_per_token_ms"), 3,
               Target(at_most=0.5) if at_target and not posted else None),
        # Snapshot feeds that lag skip versions (conflation), and with them work: per
        # delivered event, the two sides do comparable work.
        Metric("server us/event", _per_event, _per_event, 2),
        Metric("events/s", _get("events_per_s"), _get("events_per_s"), 0),
        Metric("p50 ms", _get("p50_ms"), _get("p50_ms"), 2),
        Metric("p99 ms", _get("p99_ms"), _get("p99_ms"), 2, Target(at_most=1.0)),
    ]


TITLES = {
    "a": "(a) fan-out C={size}", "b": "(b) tokens, {size}/chunk", "c": "(c) idle feeds",
    "d": "(d) API step", "e": "(e) 2 procs+Redis C={size}",
}


def _title(scenario: str, size: str) -> str:
    if size.startswith("answer"):
        return f"(b) {size}, delta vs snapshot"
    return TITLES[scenario].format(size=size)


# Other sessions may share the machine: a pair during which other processes used this
# many cores is left out, as long as at least half the runs (and two) remain.
NOISY = 0.25


def clean(pairs: list[Pair]) -> list[Pair]:
    """The pairs measured while nothing else ran, if there are enough of them."""
    quiet = [p for p in pairs if all(r.get("others_cores", 0.0) < NOISY for r in p.values())]
    return quiet if len(quiet) >= max(2, (len(pairs) + 1) // 2) else pairs


def summarise(found: dict[str, list[Pair]]) -> list[dict[str, Any]]:
    """One row per scenario and metric: medians, ratio, target, CPU."""
    rows: list[dict[str, Any]] = []
    for key, measured in found.items():
        pairs = clean(measured)
        scenario, _, size = key.partition("/")
        usage = {side: [utilisation(p[side]) for p in pairs if side in p]
                 for side in ("motia", "baseline")}
        cpu = {side: _median_usage(usage[side]) for side in usage}
        noise = {side: {name: median([p[side].get(f"{name}_cores", math.nan)
                                      for p in pairs if side in p])
                        for name in ("others", "softirq")} for side in usage}
        for metric in metrics(key):
            motia = median([metric.motia(p["motia"]) for p in pairs if "motia" in p])
            base = median([metric.baseline(p["baseline"]) for p in pairs if "baseline" in p])
            # The same-run ratio, then its median: drift between runs cancels.
            ratio = median([metric.motia(p["motia"]) / metric.baseline(p["baseline"])
                            for p in pairs if "motia" in p and "baseline" in p
                            and metric.baseline(p["baseline"])])
            rows.append({
                "key": key, "scenario": _title(scenario, size),
                "metric": metric.label, "motia": motia, "baseline": base, "ratio": ratio,
                "digits": metric.digits,
                "target": str(metric.target) if metric.target else None,
                "met": metric.target.met(ratio) if metric.target else None,
                "cpu": {side: {"servers": servers, "client": client_}
                        for side, (servers, client_) in cpu.items()},
                "limit": {side: limit(*c, noise[side]["others"], noise[side]["softirq"])
                          for side, c in cpu.items()},
                # Cores other processes of the machine used meanwhile.
                "others_cores": _most([n["others"] for n in noise.values()]),
                "softirq_cores": _most([n["softirq"] for n in noise.values()]),
                "runs": f"{len(pairs)}/{len(measured)}",
            })
    return rows


def _most(values: Sequence[float]) -> float:
    return max((v for v in values if not math.isnan(v)), default=float("nan"))


def _median_usage(usage: list[tuple[list[float], float]]) -> tuple[list[float], float]:
    """Median cores of each server process, and of the client, over runs."""
    processes = max((len(servers) for servers, _ in usage), default=0)
    servers = [median([s[i] for s, _ in usage if len(s) > i]) for i in range(processes)]
    return servers, median([c for _, c in usage])


def _number(value: float, digits: int) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:,.{digits}f}"


def _cpu(cpu: dict[str, Any]) -> str:
    servers = "+".join("-" if math.isnan(s) else f"{s:.2f}" for s in cpu["servers"])
    client = "-" if math.isnan(cpu["client"]) else f"{cpu['client']:.2f}"
    return f"{servers} / {client}"


HEADER = ["scenario", "metric", "motia_sse", "baseline", "ratio", "target", "met",
          "cores srv/cli motia", "cores srv/cli base", "limit (motia)", "others", "runs"]


def table_rows(rows: list[dict[str, Any]]) -> list[list[str]]:
    """The table's cells."""
    cells: list[list[str]] = []
    for row in rows:
        met = "" if row["met"] is None else ("yes" if row["met"] else "NO")
        cells.append([row["scenario"], row["metric"], _number(row["motia"], row["digits"]),
                      _number(row["baseline"], row["digits"]), _number(row["ratio"], 2),
                      row["target"] or "", met, _cpu(row["cpu"]["motia"]),
                      _cpu(row["cpu"]["baseline"]), row["limit"]["motia"],
                      _number(row["others_cores"], 2), row["runs"]])
    return cells


def text_table(rows: list[dict[str, Any]]) -> str:
    """The table for a terminal."""
    cells = [HEADER, *table_rows(rows)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(HEADER))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(r, widths, strict=True)))
             for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The table for BENCHMARKS.md."""
    lines = ["| " + " | ".join(HEADER) + " |",
             "|" + "|".join(["---", "---", *["---:"] * 5, "---", "---", "---", "---:", "---:"])
             + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in table_rows(rows)]
    return "\n".join(lines)
