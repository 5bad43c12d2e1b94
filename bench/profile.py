"""motia_sse under py-spy in scenarios (a) C=1,000, (b) and (d): where the server's time
goes; and tracemalloc in (c): where an idle feed's memory goes (`bench/memprofile.py`).

py-spy cannot attach to a running process here (no ptrace of non-children), so the
server runs as py-spy's child: `py-spy record --format raw -- python -m motia_sse ...`.
py-spy pauses the server for each sample (consistent stacks; --nonblocking tore
them here). Idle time (waiting in epoll) is not sampled; start-up (imports) is dropped.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.procs import (
    BENCH_STEPS,
    EXAMPLE_STEPS,
    REPO,
    Process,
    baseline_server,
    fake_llm_server,
    motia_server,
    python,
)
from bench.scenarios import Options, api_once, client, fanout_once, running

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
STARTUP = ("<frozen importlib", "load_project")
# Leaves where a thread waits without py-spy seeing it as idle: an executor's idle worker
# blocks in queue.get (C code), so its stack ends in `_worker` itself.
IDLE_LEAVES = ("_worker (concurrent/futures/thread.py)",)


def pyspy() -> str:
    """The py-spy binary next to this interpreter, or on PATH."""
    local = Path(sys.executable).parent / "py-spy"
    found = str(local) if local.exists() else shutil.which("py-spy")
    if found is None:
        raise RuntimeError("py-spy is not installed (.venv/bin/pip install py-spy)")
    return found


def _short(path: str) -> str:
    for marker in ("site-packages/", f"{REPO}/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path.replace(str(Path(sys.executable).parent.parent), "")


def parse_raw(text: str) -> list[tuple[list[str], int]]:
    """py-spy's raw (collapsed) output: root-first frames of each stack, and its count."""
    stacks: list[tuple[list[str], int]] = []
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


def hot_spots(stacks: list[tuple[list[str], int]], top: int = 12) -> dict[str, Any]:
    """Self time by function (with its hottest line) and inclusive time by function."""
    kept = [(frames, n) for frames, n in stacks if not any(
        s in f for f in frames for s in STARTUP)]
    self_time: Counter[str] = Counter()
    lines: dict[str, Counter[str]] = {}
    inclusive: Counter[str] = Counter()
    parsed_stacks = [([_frame(f) for f in frames], n) for frames, n in kept]
    parsed_stacks = [(p, n) for p, n in parsed_stacks if p[-1][0] not in IDLE_LEAVES]
    total = sum(n for _, n in parsed_stacks)
    for parsed, count in parsed_stacks:
        leaf_name, leaf_line = parsed[-1]
        self_time[leaf_name] += count
        lines.setdefault(leaf_name, Counter())[leaf_line] += count
        for name in {name for name, _ in parsed}:
            inclusive[name] += count

    def share(count: int) -> float:
        return round(100 * count / total, 1) if total else 0.0

    return {
        "samples": total,
        "self": [{"function": name, "hottest_line": lines[name].most_common(1)[0][0],
                  "share_pct": share(count)} for name, count in self_time.most_common(top)],
        "inclusive": [{"function": name, "share_pct": share(count)}
                      for name, count in inclusive.most_common(top * 3)
                      if _interesting(name) and count < 0.95 * total][:top],
        # The server's own code (and the steps'), inclusive: what motia_sse adds.
        "motia_sse": [{"function": name, "share_pct": share(count)}
                      for name, count in inclusive.most_common()
                      if _own(name) and _interesting(name) and count < 0.95 * total][:top],
    }


def _own(name: str) -> bool:
    return "(motia_sse/" in name or "_step.py)" in name or "_stream.py)" in name


def _frame(frame: str) -> tuple[str, str]:
    """('func (file)', 'file:line') of one collapsed frame."""
    match = FRAME.match(frame)
    if match is None:
        return frame, frame
    path = _short(match["file"])
    return f"{match['func']} ({path})", f"{path}:{match['line'] or '?'}"


def _interesting(name: str) -> bool:
    """Inclusive time of the loop's own machinery says nothing: leave it out."""
    return not any(s in name for s in ("run_forever", "_run_once", "run_until_complete",
                                       "asyncio/runners.py", "run_app", "(<string>)",
                                       "_run_module_as_main", "_run_code", "main (",
                                       "Handle._run", "events.py", "<module> (",
                                       "serve (motia_sse/cli.py)"))


# What `--profile` runs: (a) C=1,000, the (b) burst, (b) at scale C=1,000 with delta and
# with snapshot feeds, opening (c)'s idle feeds, (d), the baseline in (d) for contrast,
# and the heap of idle feeds.
PROFILES = ("a-1000", "b-0ms", "b-answer-delta", "b-answer-snapshot", "c-opens", "d",
            "d-baseline", "c-memory")


def profile(options: Options, log: Callable[[str], None],
            names: tuple[str, ...] = PROFILES) -> dict[str, Any]:
    """Profile motia_sse in `names` (PROFILES). Writes and returns the hot spots."""
    out = options.out / "profiles"
    out.mkdir(parents=True, exist_ok=True)
    found: dict[str, Any] = {}
    for name in names:
        if name == "c-memory":
            continue
        raw = out / f"{name}.raw.txt"
        raw.unlink(missing_ok=True)
        wrapper = [pyspy(), "record", "--rate", "200", "--format", "raw",
                   "--output", str(raw), "--"]
        _profiled_run(options, name, wrapper)
        if not raw.exists():
            raise RuntimeError(f"py-spy wrote no profile; see {options.logs}")
        found[name] = hot_spots(parse_raw(raw.read_text()))
        (out / f"{name}.txt").write_text(format_hot_spots(name, found[name]))
        log(format_hot_spots(name, found[name]))
    if "c-memory" in names:
        found["c-memory"] = memory(options)
        (out / "c-memory.txt").write_text(format_memory(found["c-memory"]))
        log(format_memory(found["c-memory"]))
    return found


def memory(options: Options, feeds: int = 2000) -> dict[str, Any]:
    """Heap growth per idle feed by allocation site (tracemalloc), both sides."""
    found: dict[str, Any] = {}
    for side in ("baseline", "motia"):
        done = subprocess.run(python("-m", "bench.memprofile", "--side", side, "--feeds",
                                     str(feeds)), cwd=REPO, capture_output=True, text=True,
                              timeout=options.timeout * 2, check=True)
        found[side] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def format_memory(found: dict[str, Any]) -> str:
    """The heap growth as text."""
    lines = []
    for side, result in found.items():
        lines.append(f"heap per idle feed, {side}: {result['bytes_per_feed']:.0f} bytes "
                     f"({result['feeds']} feeds, tracemalloc)")
        lines += [f"    {t['bytes_per_feed']:6d} B  {t['blocks_per_feed']:5.2f} blocks  "
                  f"{t['where']}" for t in result["top"]]
    return "\n".join(lines) + "\n"


def _with_fake_model(options: Options, name: str, steps: Path, chunks: int,
                     wrapper: list[str]) -> tuple[Process, Process]:
    """The fake model streaming `chunks` chunks, and motia_sse under `wrapper` using it."""
    fake = fake_llm_server("profile-fake", options.logs, chunks, 0.0)
    env = {"OPENAI_BASE_URL": f"http://127.0.0.1:{fake.port}/v1",
           "OPENAI_API_KEY": "test-key", "OPENAI_MODEL": "fake"}
    return fake, motia_server(f"profile-{name}", options.logs, steps, ["--store", "memory"],
                              env=env, wrapper=wrapper)


def _profiled_run(options: Options, name: str, wrapper: list[str]) -> None:
    """One scenario with motia_sse under `wrapper`, a few times over for samples."""
    if name == "b-0ms":
        fake, server = _with_fake_model(options, name, EXAMPLE_STEPS, options.token_chunks,
                                        wrapper)
        with running(fake, server):
            for _ in range(5):
                client(options, "tokens", "--post-port", server.port, "--fake-port",
                       fake.port, "--pids", server.pid, "--subscribers",
                       options.token_watchers, "--chunks", options.token_chunks)
        return
    if name.startswith("b-answer"):
        fake, server = _with_fake_model(options, name, BENCH_STEPS, options.answer_tokens,
                                        wrapper)
        with running(fake, server):
            for run in range(2):
                client(options, "answer", "--sub-ports", server.port, "--post-port",
                       server.port, "--pids", server.pid, "--subscribers", 1000,
                       "--updates", options.answer_tokens, "--group", f"{name}-{run}",
                       "--streamed", *(["--delta"] if name.endswith("delta") else []))
        return
    if name == "c-opens":
        server = motia_server(f"profile-{name}", options.logs, BENCH_STEPS,
                              ["--store", "memory"], wrapper=wrapper)
        with running(server):
            for _ in range(2):
                client(options, "idle", "--sub-ports", server.port, "--pids", server.pid,
                       "--subscribers", 5000)
        return
    server = (baseline_server(f"profile-{name}", options.logs, wrapper)
              if name.endswith("-baseline") else
              motia_server(f"profile-{name}", options.logs, BENCH_STEPS, ["--store", "memory"],
                           wrapper=wrapper))
    with running(server):
        if name.startswith("d"):
            api_once(options, server, options.api_seconds * 2)
        else:
            for _ in range(3):
                fanout_once(options, [server], 1000)


def format_hot_spots(name: str, spots: dict[str, Any]) -> str:
    """The hot spots as text."""
    lines = [f"profile {name}: {spots['samples']} samples (busy, start-up excluded)",
             "  self time:"]
    lines += [f"    {s['share_pct']:5.1f}%  {s['function']}  [{s['hottest_line']}]"
              for s in spots["self"]]
    lines.append("  inclusive:")
    lines += [f"    {s['share_pct']:5.1f}%  {s['function']}" for s in spots["inclusive"]]
    if spots["motia_sse"]:
        lines.append("  inclusive, motia_sse and step code only:")
        lines += [f"    {s['share_pct']:5.1f}%  {s['function']}" for s in spots["motia_sse"]]
    return "\n".join(lines) + "\n"
