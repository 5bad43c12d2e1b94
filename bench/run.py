"""`python -m bench`: every scenario on motia_sse and on the bare-aiohttp baseline,
`--runs` times; prints one table and writes it, with every run's figures, as JSON."""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from bench.procs import REPO
from bench.profile import PROFILES, profile
from bench.report import markdown_table, summarise, text_table
from bench.scenarios import Options, QuietGate, run_all


def _sizes(text: str) -> tuple[int, ...]:
    return tuple(int(s) for s in text.split(",") if s)


def _names(*known: str) -> Callable[[str], tuple[str, ...]]:
    def names(text: str) -> tuple[str, ...]:
        found = tuple(s for s in text.split(",") if s)
        unknown = set(found) - set(known)
        if unknown:
            raise argparse.ArgumentTypeError(
                f"expected some of {', '.join(known)}; got {', '.join(sorted(unknown))}")
        return found
    return names


def _delays(text: str) -> tuple[float, ...]:
    return tuple(float(s) / 1000 for s in text.split(",") if s)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    defaults = Options()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=defaults.runs,
                        help=f"runs of each scenario; the table shows medians ({defaults.runs})")
    parser.add_argument("--scenarios", default="".join(defaults.scenarios),
                        help="which of a,b,c,d,e to run, e.g. 'ad' (all)")
    parser.add_argument("--fanout-sizes", type=_sizes, default=defaults.fanout_sizes,
                        help="(a) subscriber counts (100,1000,5000)")
    parser.add_argument("--distributed-sizes", type=_sizes, default=defaults.distributed_sizes,
                        help="(e) subscriber counts (100,1000,5000)")
    parser.add_argument("--updates", type=int, default=defaults.updates,
                        help="(a, e) updates per measurement (200)")
    parser.add_argument("--idle-feeds", type=int, default=defaults.idle_feeds,
                        help="(c) idle feeds (10000)")
    parser.add_argument("--token-chunks", type=int, default=defaults.token_chunks,
                        help="(b) chunks the fake model streams (200)")
    parser.add_argument("--token-watchers", type=int, default=defaults.token_watchers,
                        help="(b) feeds watching the answer (100)")
    parser.add_argument("--token-delays-ms", type=_delays, default=defaults.token_delays,
                        help="(b) pause after each chunk, one measurement each (0,5)")
    parser.add_argument("--api-connections", type=int, default=defaults.api_connections,
                        help="(d) keep-alive connections (50)")
    parser.add_argument("--api-seconds", type=float, default=defaults.api_seconds,
                        help="(d) seconds per measurement (5)")
    parser.add_argument("--answer-sizes", type=_sizes, default=defaults.answer_sizes,
                        help="(b) at scale: watchers of the 2,000-token answer (100,1000)")
    parser.add_argument("--answer-tokens", type=int, default=defaults.answer_tokens,
                        help="(b) at scale: tokens of the answer (2000)")
    parser.add_argument("--answer-modes", type=_names("streamed", "posted"),
                        default=defaults.answer_modes,
                        help="(b) at scale: streamed (an event step reads the fake model, "
                             "the seed's case) and/or posted (a POST per token)")
    parser.add_argument("--answer-feeds", type=_names("item", "mux"),
                        default=defaults.answer_feeds,
                        help="(b) at scale: item feeds and/or multiplexed ones (mux, what "
                             "motia-stream.js opens)")
    parser.add_argument("--server-loops", default="asyncio,uvloop",
                        help="the servers' event loops (motia_sse's --loop and the "
                             "baseline's alike): one table each (asyncio,uvloop)")
    parser.add_argument("--client-loop", choices=("uvloop", "asyncio"),
                        default=defaults.client_loop, help="the load client's event loop")
    parser.add_argument("--timeout", type=float, default=defaults.timeout,
                        help="bound of every wait in the client, seconds (120)")
    parser.add_argument("--quiet-wait", type=float, default=defaults.quiet.per_wait,
                        help="seconds to wait before each measurement for the machine to "
                             "be idle: other sessions may share it (15)")
    parser.add_argument("--quiet-budget", type=float, default=defaults.quiet.budget,
                        help="seconds of such waiting in all (120)")
    parser.add_argument("--out", type=Path, default=defaults.out,
                        help="where results go (bench-results/)")
    parser.add_argument("--profile", action="store_true",
                        help="also profile with py-spy (motia_sse in (a) C=1000, (b), (d); the "
                             "baseline in (d)) and the heap of idle feeds with tracemalloc")
    parser.add_argument("--profile-only", action="store_true", help="only profile")
    parser.add_argument("--profiles", type=_names(*PROFILES), default=PROFILES,
                        help=f"which profiles --profile takes ({','.join(PROFILES)})")
    parser.add_argument("--report", type=Path, metavar="JSON",
                        help="measure nothing: print the table of a saved bench-*.json")
    return parser.parse_args(argv)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break

    def package(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    def tool(argv: list[str]) -> str:
        if shutil.which(argv[0]) is None:
            return "not installed"
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return (done.stdout or done.stderr).strip().splitlines()[0]

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True,
                              text=True, timeout=30)
        return done.stdout.strip()

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "server_files_changed_since": git("status", "--porcelain", "--", "motia_sse", "steps"
                                          ).splitlines(),
        "nproc": os.cpu_count(), "cpu": model, "kernel": platform.release(),
        "python": platform.python_version(), "aiohttp": package("aiohttp"),
        "aiohttp-sse": package("aiohttp-sse"), "orjson": package("orjson"),
        "uvloop (client only)": package("uvloop"), "redis-server": tool(["redis-server", "-v"]),
        "wrk": tool(["wrk", "-v"]), "memory_mib": _memory_mib(),
    }


def _memory_mib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return 0


def log(text: str) -> None:
    """Progress, to stderr (stdout holds the table)."""
    print(text, file=sys.stderr, flush=True)


def _clean(value: Any) -> Any:
    """JSON has no NaN: null instead."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run, print the table, write bench-results/bench-<time>.json and latest.*."""
    args = parse_args(argv)
    if args.report:
        rows = summarise(json.loads(args.report.read_text())["runs"])
        print(text_table(rows))
        print(markdown_table(rows), file=sys.stderr)
        return 0
    options = Options(
        runs=args.runs, scenarios=tuple(s for s in args.scenarios if s in "abcde"),
        fanout_sizes=args.fanout_sizes, distributed_sizes=args.distributed_sizes,
        updates=args.updates, idle_feeds=args.idle_feeds, token_chunks=args.token_chunks,
        token_watchers=args.token_watchers, token_delays=args.token_delays_ms,
        answer_sizes=args.answer_sizes, answer_tokens=args.answer_tokens,
        answer_modes=args.answer_modes, answer_feeds=args.answer_feeds,
        api_connections=args.api_connections, api_seconds=args.api_seconds,
        client_loop=args.client_loop, timeout=args.timeout,
        quiet=QuietGate(args.quiet_wait, args.quiet_budget),
        out=args.out.resolve())
    options.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    report: dict[str, Any] = {"machine": machine(), "options": {
        k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}
    if not args.profile_only:
        tables = []
        for loop in [x for x in args.server_loops.split(",") if x]:
            os.environ["MOTIA_LOOP"] = loop  # the servers' loop: motia_sse's and the baseline's
            found = run_all(options, log)
            rows = summarise(found)
            # The last loop's table stays where --report looks for it.
            report.setdefault("by_loop", {})[loop] = {"rows": rows, "runs": found}
            report["rows"], report["runs"] = rows, found
            print(f"servers on {loop}:\n{text_table(rows)}")
            tables.append(f"Servers on {loop}:\n\n{markdown_table(rows)}\n")
        (options.out / "latest.md").write_text("\n".join(tables))
    if args.profile or args.profile_only:
        report["profiles"] = profile(options, log, args.profiles)
    report["seconds"] = round(time.monotonic() - started, 1)
    text = json.dumps(_clean(report), indent=1)
    kind = "profile" if args.profile_only else "bench"
    (options.out / f"{kind}-{stamp}.json").write_text(text)
    (options.out / ("latest-profile.json" if args.profile_only else "latest.json")
     ).write_text(text)
    log(f"wrote {options.out}/{kind}-{stamp}.json in {report['seconds']:.0f}s")
    return 0
