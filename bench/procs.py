"""The processes a benchmark runs: servers, Redis, clients; and what /proc says of them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import attrs

from motia_sse.testing import RedisServer, ServerProcess, start_argv

REPO = Path(__file__).resolve().parent.parent
BENCH_STEPS = REPO / "bench" / "steps"
EXAMPLE_STEPS = REPO / "steps"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (0.0 once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # The command name (field 2) may hold spaces; fields after it are plain.
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_kib(pid: int) -> int:
    """Resident set size (VmRSS) of the process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


@attrs.define
class Process(ServerProcess):
    """A server process, perhaps run as the child of `wrapper` (py-spy record ... --):
    `pid` is then that child's."""

    wrapper: list[str] = attrs.Factory(list)

    @property
    def pid(self) -> int:
        """The server's process id (the process must have been started)."""
        if not self.wrapper:
            return super().pid
        found = children(super().pid)
        if len(found) != 1:
            raise RuntimeError(f"{self.wrapper[0]} has children {found}, not one")
        return found[0]

    def command(self) -> list[str]:
        """The wrapper's command line, then the server's."""
        return [*self.wrapper, *super().command()]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        """Stop by PID; a wrapper is left to end by itself once its child has (py-spy
        then writes its profile)."""
        if self.wrapper and self.process is not None and self.process.poll() is None:
            with contextlib.suppress(RuntimeError, OSError):
                os.kill(self.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                return self.process.wait(timeout * 3)
        return super().stop(sig, timeout)


def python(*args: str) -> list[str]:
    """argv running this interpreter (the project's virtualenv) with `args`."""
    return [sys.executable, *args]


_motia_options: set[str] = set()


def motia_supports(option: str) -> bool:
    """Whether `motia-sse start` takes `option` (its command line is still growing)."""
    if not _motia_options:
        usage = subprocess.run(python("-m", "motia_sse", "start", "--help"), cwd=REPO,
                               capture_output=True, text=True, timeout=60, check=True).stdout
        _motia_options.update(w.strip("[],") for w in usage.split() if w.startswith(("-", "[-")))
    return option in _motia_options


# Feeds the benchmark opens from one address, more than the server allows by default.
FEED_LIMITS = {"--max-feeds": "100000", "--max-feeds-per-client": "100000"}


def motia_server(name: str, logs: Path, steps: Path, extra: Sequence[str] = (),
                 env: dict[str, str] | None = None, wrapper: Sequence[str] = ()) -> Process:
    """`python -m motia_sse start` on a free port of 127.0.0.1, feed limits raised."""
    limits = [x for option, value in FEED_LIMITS.items() if motia_supports(option)
              for x in (option, value)]
    return Process(start_argv("--steps", str(steps), *limits, *extra), REPO,
                   env={**os.environ, **(env or {})}, log=logs / f"{name}.log",
                   wrapper=list(wrapper))


def baseline_server(name: str, logs: Path, wrapper: Sequence[str] = ()) -> Process:
    """The bare aiohttp broadcaster (`bench/baseline.py`)."""
    return Process(python("-m", "bench.baseline", "--port", "{port}"), REPO,
                   log=logs / f"{name}.log", wrapper=list(wrapper))


def fake_llm_server(name: str, logs: Path, chunks: int, delay: float) -> Process:
    """The fake chat-completions server (`bench/fake_llm.py`), streaming `chunks` chunks."""
    return Process(python("-m", "bench.fake_llm", "--port", "{port}", "--chunks", str(chunks),
                          "--delay", str(delay)), REPO, log=logs / f"{name}.log")


def redis_server(name: str, logs: Path, workdir: Path) -> RedisServer:
    """A redis-server of our own on a free port, nothing on disk."""
    return RedisServer(workdir, log=logs / f"{name}.log")


def children(pid: int) -> list[int]:
    """The direct children of `pid` (e.g. the server py-spy started)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(p) for p in text]
    return found


def machine_cpu_seconds() -> tuple[float, float]:
    """CPU seconds all processors have spent since boot (/proc/stat) running processes
    (steal counts: the hypervisor gave them to others), and in interrupts: on loopback
    most of that is our own TCP traffic, which the kernel accounts to no process."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + steal) / CLOCK_TICKS, (irq + softirq) / CLOCK_TICKS


def wait_quiet(max_wait: float, threshold: float = 0.25, sample: float = 0.5) -> float:
    """Wait (at most `max_wait` s) until the machine is nearly idle: other sessions share
    it. Returns the busy cores last seen (with our idle servers, about all foreign)."""
    deadline = time.monotonic() + max_wait
    while True:
        before = sum(machine_cpu_seconds())
        time.sleep(sample)
        busy = (sum(machine_cpu_seconds()) - before) / sample
        if busy < threshold or time.monotonic() >= deadline:
            return busy
