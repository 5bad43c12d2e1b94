"""`motia-sse start --workers N`: N server processes on one port, sharing Redis.

Each worker is a plain `start` process bound with SO_REUSEPORT, so the kernel spreads
connections over them; Redis makes them one server (items, feeds, events, cron). This
process only supervises: it restarts a worker that dies and passes SIGTERM and SIGINT on.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from types import FrameType

from motia_sse.settings import Settings

log = logging.getLogger("motia_sse")


class _Stop(Exception):
    """A signal to stop every worker."""


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def serve_workers(settings: Settings, argv: list[str], count: int) -> int:
    """Run `count` workers until stopped; 1 at once if they cannot share state."""
    if not settings.redis_url:
        print("motia-sse: --workers above 1 needs --redis (or REDIS_URL): workers share "
              "items, feeds and events through it", file=sys.stderr)
        return 1
    command = [sys.executable, "-m", "motia_sse", *_one_worker(argv)]
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    workers = [subprocess.Popen(command) for _ in range(count)]
    log.info("started %d workers: %s", count, ", ".join(str(w.pid) for w in workers))
    try:
        while True:
            time.sleep(0.5)
            for index, worker in enumerate(workers):
                if worker.poll() is not None:
                    log.warning("worker %d exited with %s; starting another", worker.pid,
                                worker.returncode)
                    time.sleep(1.0)  # no tight loop if it cannot start at all
                    workers[index] = subprocess.Popen(command)
    except _Stop:
        pass
    for worker in workers:
        if worker.poll() is None:
            worker.terminate()
    for worker in workers:
        try:
            worker.wait(settings.shutdown_timeout + 5)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    return 0


def _one_worker(argv: list[str]) -> list[str]:
    """The same command line, as one worker sharing the port."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--workers":
            skip = True
        elif not arg.startswith("--workers="):
            out.append(arg)
    return [*out, "--workers", "1", "--reuse-port"]
