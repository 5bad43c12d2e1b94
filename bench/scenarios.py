"""One run of each scenario, on motia_sse and on the baseline: start, measure, stop."""

from __future__ import annotations

import json
import re
import resource
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import attrs

from bench.procs import (
    BENCH_STEPS,
    EXAMPLE_STEPS,
    REPO,
    Process,
    baseline_server,
    cpu_seconds,
    fake_llm_server,
    machine_cpu_seconds,
    motia_server,
    python,
    redis_server,
    wait_quiet,
)
from motia_sse.testing import RedisServer

Result = dict[str, Any]
# Both sides of one measurement: {"motia": {...}, "baseline": {...}}.
Pair = dict[str, Result]


@attrs.define
class QuietGate:
    """Waits for the machine to be idle before a measurement, within a total budget:
    other sessions share this machine, and their work would be measured as ours."""

    per_wait: float = 15.0
    budget: float = 120.0
    waited: float = 0.0

    def wait(self) -> float:
        """Wait; return the busy cores last seen."""
        started = time.monotonic()
        load = wait_quiet(max(0.0, min(self.per_wait, self.budget - self.waited)))
        self.waited += time.monotonic() - started
        return load


@attrs.frozen
class Options:
    """What `python -m bench` was asked to do."""

    runs: int = 5
    scenarios: tuple[str, ...] = ("a", "b", "c", "d", "e")
    fanout_sizes: tuple[int, ...] = (100, 1000, 5000)
    distributed_sizes: tuple[int, ...] = (100, 1000, 5000)
    updates: int = 200
    idle_feeds: int = 10_000
    token_chunks: int = 200
    token_watchers: int = 100
    # Seconds the fake server waits after each chunk: 0 (a burst) and a paced stream.
    token_delays: tuple[float, ...] = (0.0, 0.005)
    # (b) at scale: the seed's answer (2,000 tokens of ~5 characters) at C watchers.
    answer_sizes: tuple[int, ...] = (100, 1000)
    answer_tokens: int = 2000
    # "streamed": the seed's case (an event step sets the item per chunk of the fake
    # model's stream); "posted": each token POSTed, one after another.
    answer_modes: tuple[str, ...] = ("streamed", "posted")
    # (b) at scale: "item" feeds (/streams/<s>/<g>/<id>) and/or "mux" (/streams?sub=...,
    # what motia-stream.js opens).
    answer_feeds: tuple[str, ...] = ("item",)
    api_connections: int = 50
    api_seconds: float = 5.0
    client_loop: str = "uvloop"
    timeout: float = 120.0
    quiet: QuietGate = attrs.Factory(QuietGate)
    out: Path = REPO / "bench-results"

    @property
    def logs(self) -> Path:
        """Where server logs go."""
        return self.out / "logs"


@contextmanager
def running(*processes: Process | RedisServer) -> Iterator[None]:
    """Start the processes in order; stop them all (by PID) at the end."""
    with ExitStack() as stack:
        for process in processes:
            stack.callback(process.stop)
            process.start(timeout=30.0)
        yield


def client(options: Options, scenario: str, *args: str | int | float) -> Result:
    """Run the load client in its own process (once the machine is quiet); its result."""
    load = options.quiet.wait()
    argv = python("-m", "bench.client", scenario, "--loop", options.client_loop,
                  "--timeout", str(options.timeout), *map(str, args))
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True,
                          timeout=options.timeout * 4)
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"client {scenario} failed ({done.returncode}):\n"
                           f"{done.stderr[-3000:]}")
    result: Result = json.loads(done.stdout.strip().splitlines()[-1])
    return {**result, "load_before": load}


def ordered(run: int) -> tuple[str, str]:
    """Which side goes first in this run: alternate, so that drift hits both alike."""
    return ("baseline", "motia") if run % 2 == 0 else ("motia", "baseline")


def fanout_once(options: Options, servers: Sequence[Process], size: int,
                extra_pids: Sequence[int] = ()) -> Result:
    """One fan-out measurement: feeds spread over `servers`, updates to the first."""
    return client(options, "fanout", "--warmup",
                  "--sub-ports", ",".join(str(s.port) for s in servers),
                  "--post-port", servers[0].port,
                  "--pids", ",".join(str(p) for p in [*(s.pid for s in servers), *extra_pids]),
                  "--subscribers", size, "--updates", options.updates,
                  "--group", f"fanout-{size}")


def scenario_a(options: Options, run: int) -> dict[str, Pair]:
    """(a) fan-out: C feeds on one item, U sequential POSTs through the API step. Both
    servers run throughout (the one not measured idles), so that each pair of
    measurements is taken back to back and shares whatever else the machine does."""
    found: dict[str, Pair] = {f"a/{size}": {} for size in options.fanout_sizes}
    servers = {"baseline": baseline_server(f"a-baseline-{run}", options.logs),
               "motia": motia_server(f"a-motia-{run}", options.logs, BENCH_STEPS,
                                     ["--store", "memory"])}
    with running(*servers.values()):
        for size in options.fanout_sizes:
            for side in ordered(run):
                found[f"a/{size}"][side] = fanout_once(options, [servers[side]], size)
    return found


def scenario_b(options: Options, run: int) -> dict[str, Pair]:
    """(b) token streaming: POST /open-ai to the full text at C watchers, against the
    fake server's own streaming time (the baseline)."""
    found: dict[str, Pair] = {}
    for delay in options.token_delays:
        fake = fake_llm_server(f"b-fake-{run}", options.logs, options.token_chunks, delay)
        env = {"OPENAI_BASE_URL": f"http://127.0.0.1:{fake.port}/v1",
               "OPENAI_API_KEY": "test-key", "OPENAI_MODEL": "fake"}
        motia = motia_server(f"b-motia-{run}", options.logs, EXAMPLE_STEPS,
                             ["--store", "memory"], env=env)
        with running(fake, motia):
            result = client(options, "tokens", "--post-port", motia.port,
                            "--fake-port", fake.port, "--pids", f"{motia.pid},{fake.pid}",
                            "--subscribers", options.token_watchers,
                            "--chunks", options.token_chunks)
        found[f"b/{delay * 1000:g}ms"] = {
            "motia": result,
            "baseline": {"fake_s": result["fake_s"], "wall_s": result["fake_s"],
                         "server_cpu_s": result["fake_server_cpu_s"][1:],
                         "client_cpu_s": result["fake_client_cpu_s"]}}
    return found


def scenario_b_answer(options: Options, run: int) -> dict[str, Pair]:
    """(b) at scale: one answer of `answer_tokens` tokens, streamed from the fake model
    by an event step or POSTed token by token (`answer_modes`), C feeds with deltas and
    C with snapshots, on one motia_sse server (the pair's "motia" side is delta feeds,
    its "baseline" side snapshot feeds)."""
    found: dict[str, Pair] = {}
    fake = fake_llm_server(f"b-answer-fake-{run}", options.logs, options.answer_tokens, 0.0)
    env = {"OPENAI_BASE_URL": f"http://127.0.0.1:{fake.port}/v1",
           "OPENAI_API_KEY": "test-key", "OPENAI_MODEL": "fake"}
    server = motia_server(f"b-answer-{run}", options.logs, BENCH_STEPS, ["--store", "memory"],
                          env=env)
    with running(fake, server):
        for mode, feeds in [(m, f) for m in options.answer_modes for f in options.answer_feeds]:
            name = "-".join(["answer", *([mode] if mode != "streamed" else []),
                             *([feeds] if feeds != "item" else [])])
            for size in options.answer_sizes:
                pair: Pair = {}
                for side in ordered(run):
                    pair[side] = client(
                        options, "answer", "--sub-ports", server.port,
                        "--post-port", server.port, "--pids", f"{server.pid},{fake.pid}",
                        "--subscribers", size, "--updates", options.answer_tokens,
                        "--group", f"{name}-{size}-{side}-{run}",
                        *(["--delta"] if side == "motia" else []),
                        *(["--mux"] if feeds == "mux" else []),
                        *(["--streamed"] if mode == "streamed" else []))
                found[f"b/{name} C={size}"] = pair
    return found


def scenario_c(options: Options, run: int) -> dict[str, Pair]:
    """(c) idle feeds: server RSS per connection."""
    pair: Pair = {}
    for side in ordered(run):
        server = (baseline_server(f"c-baseline-{run}", options.logs) if side == "baseline"
                  else motia_server(f"c-motia-{run}", options.logs, BENCH_STEPS,
                                    ["--store", "memory"]))
        with running(server):
            pair[side] = client(options, "idle", "--sub-ports", server.port,
                                "--pids", server.pid, "--subscribers", options.idle_feeds)
    return {"c": pair}


WRK_SCRIPT = REPO / "bench" / "wrk_post.lua"


def api_once(options: Options, server: Process, seconds: float) -> Result:
    """Requests/s of POST /bench/noop: wrk if installed, else the Python client."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return client(options, "api", "--post-port", server.port, "--pids", server.pid,
                      "--connections", options.api_connections, "--duration", seconds)
    load = options.quiet.wait()
    before_children = _children_cpu()
    before_server = cpu_seconds(server.pid)
    before_machine = machine_cpu_seconds()
    start = time.monotonic()
    out = subprocess.run(
        [wrk, "-t1", f"-c{options.api_connections}", f"-d{seconds:g}s", "--latency",
         "-s", str(WRK_SCRIPT), f"http://127.0.0.1:{server.port}/bench/noop"],
        capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    wall = time.monotonic() - start
    server_cpu = cpu_seconds(server.pid) - before_server
    client_cpu = _children_cpu() - before_children
    tasks, interrupts = (b - a for a, b in zip(before_machine, machine_cpu_seconds(),
                                               strict=True))
    others = (tasks - server_cpu - client_cpu) / wall
    return {"requests_per_s": _wrk_number(out, r"Requests/sec:\s+([\d.]+)"),
            "p50_ms": _wrk_ms(out, "50%"), "p99_ms": _wrk_ms(out, "99%"),
            "non_2xx": _wrk_number(out, r"Non-2xx or 3xx responses:\s+(\d+)", 0.0),
            "wall_s": wall, "server_cpu_s": [server_cpu], "client_cpu_s": client_cpu,
            "others_cores": max(0.0, others), "softirq_cores": interrupts / wall,
            "load_before": load, "client": "wrk"}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _wrk_number(out: str, pattern: str, default: float | None = None) -> float:
    match = re.search(pattern, out)
    if match is None:
        if default is not None:
            return default
        raise RuntimeError(f"wrk said: {out}")
    return float(match.group(1))


def _wrk_ms(out: str, label: str) -> float:
    match = re.search(rf"^\s+{re.escape(label)}\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
    if match is None:
        return float("nan")
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[match.group(2)]
    return float(match.group(1)) * scale


def scenario_d(options: Options, run: int) -> dict[str, Pair]:
    """(d) API steps alone: a trivial POST step against a trivial aiohttp handler."""
    pair: Pair = {}
    servers = {"baseline": baseline_server(f"d-baseline-{run}", options.logs),
               "motia": motia_server(f"d-motia-{run}", options.logs, BENCH_STEPS,
                                     ["--store", "memory"])}
    with running(*servers.values()):
        for server in servers.values():
            api_once(options, server, 1.0)  # warm up
        for side in ordered(run):
            pair[side] = api_once(options, servers[side], options.api_seconds)
    return {"d": pair}


def scenario_e(options: Options, run: int) -> dict[str, Pair]:
    """(e) distributed: fan-out over two motia_sse processes on Redis, feeds split
    between them, updates to one; against the single bare broadcaster, back to back."""
    found: dict[str, Pair] = {f"e/{size}": {} for size in options.distributed_sizes}
    redis = redis_server(f"e-redis-{run}", options.logs, options.out / "redis")
    base = baseline_server(f"e-baseline-{run}", options.logs)
    with running(redis, base):
        extra = ["--redis", f"redis://127.0.0.1:{redis.port}/0",
                 "--redis-prefix", f"bench-{uuid.uuid4().hex[:8]}"]
        pair = [motia_server(f"e-motia-{run}-{n}", options.logs, BENCH_STEPS, extra)
                for n in (1, 2)]
        with running(*pair):
            for size in options.distributed_sizes:
                for side in ordered(run):
                    found[f"e/{size}"][side] = (
                        fanout_once(options, [base], size) if side == "baseline"
                        else fanout_once(options, pair, size, [redis.pid]))
    return found


SCENARIOS: dict[str, Callable[[Options, int], dict[str, Pair]]] = {
    "a": scenario_a, "b": lambda o, r: {**scenario_b(o, r), **scenario_b_answer(o, r)},
    "c": scenario_c, "d": scenario_d, "e": scenario_e}


def run_all(options: Options, log: Callable[[str], None]) -> dict[str, list[Pair]]:
    """Every selected scenario, `options.runs` times; the pairs of each, run by run."""
    found: dict[str, list[Pair]] = {}
    for run in range(options.runs):
        this_run: dict[str, Pair] = {}
        for name in options.scenarios:
            started = time.monotonic()
            this_run.update(SCENARIOS[name](options, run))
            log(f"run {run + 1}/{options.runs}: scenario ({name}) "
                f"in {time.monotonic() - started:.0f}s")
        for key, pair in this_run.items():
            found.setdefault(key, []).append(pair)
    return found

