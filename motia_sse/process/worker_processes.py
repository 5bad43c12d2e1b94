"""`motia-sse start --workers N`: N server processes on one port, sharing Redis.

Each worker is a plain `start` process bound with SO_REUSEPORT, so the kernel spreads
connections over them; Redis makes them one server (items, feeds, events, cron). This
process only supervises: it restarts a worker that dies and passes SIGTERM and SIGINT on.
With metrics on, it gives the workers a folder to meet in (`--metrics-peers`): each
listens there on a Unix socket, and the worker a scrape reaches adds up all their counts.
"""

from __future__ import annotations

import logging
import signal
import sys
import tempfile
import time
from contextlib import ExitStack

from motia_sse.process.children import CANNOT_SERVE, supervised
from motia_sse.settings import Settings

log = logging.getLogger("motia_sse")


def serve_workers(settings: Settings, argv: list[str], count: int) -> int:
    """Run `count` workers until stopped; 1 at once if they cannot share state."""
    if not settings.redis_url:
        print("motia-sse: --workers above 1 needs --redis (or REDIS_URL): workers share "
              "items, feeds and events through it", file=sys.stderr)
        return 1
    command = [sys.executable, "-m", "motia_sse", *_one_worker(argv)]
    stop_signals = (signal.SIGTERM, signal.SIGINT)
    with ExitStack() as stack:
        if settings.metrics:
            peers = stack.enter_context(tempfile.TemporaryDirectory(prefix="motia-metrics-"))
            command += ["--metrics-peers", peers]
        workers = stack.enter_context(
            supervised(command, settings.shutdown_timeout + 5, stop_signals))
        started = [workers.start() for _ in range(count)]
        log.info("started %d workers: %s", count, ", ".join(str(w.pid) for w in started))
        while True:
            time.sleep(0.5)
            for worker in list(workers.running):
                if worker.poll() == CANNOT_SERVE:  # its port is taken, say; it said so
                    return 1
                if worker.poll() is not None:
                    log.warning("worker %d exited with %s; starting another", worker.pid,
                                worker.returncode)
                    time.sleep(1.0)  # no tight loop if it cannot start at all
                    workers.replace(worker)
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
