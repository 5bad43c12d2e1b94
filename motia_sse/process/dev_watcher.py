"""`motia-sse dev`: serve in a child process; reload it when the steps change.

A change is sent to the server as SIGHUP, and the server swaps the new steps in
while its feeds stay open (in_place_reload.py); when that cannot be done, the server exits
with RESTART and a fresh one starts, well under a second later. Open feeds then
reconnect by themselves and resume with Last-Event-ID, and the SQLite store and queue
keep items and pending events across it. A change that breaks loading reloads
nothing: the server prints the errors and goes on as it was. A server that has
exited (its steps did not load at start, say) is started again on the next change.
"""

from __future__ import annotations

import logging
import signal
import sys
import time
from pathlib import Path

from watchfiles import PythonFilter, watch

from motia_sse.process.children import CANNOT_SERVE, supervised
from motia_sse.process.in_place_reload import RESTART
from motia_sse.settings import Settings

log = logging.getLogger("motia_sse")


# RESTART: the server could not swap the change in. -SIGHUP: it got the signal while
# starting, before it listened for it; a fresh one loads the newest files.
_ASKS_FOR_RESTART = (RESTART, -signal.SIGHUP)


def serve_with_reload(settings: Settings, argv: list[str]) -> int:
    """Run `start` with the same options in a child; reload or restart it on changes."""
    command = [sys.executable, "-m", "motia_sse", "start",
               *[a for a in argv[1:] if a != "--no-reload"], "--host", settings.host,
               "--reload-in-place"]
    with supervised(command, settings.shutdown_timeout + 5, (signal.SIGTERM,)) as children:
        child, started, changed_at = children.start(), time.monotonic(), 0.0
        log.info("watching %s for changes", settings.steps_dir)
        for changes in watch(settings.steps_dir, watch_filter=PythonFilter(),
                             yield_on_timeout=True, rust_timeout=500, raise_interrupt=False):
            if changes:
                changed_at = time.monotonic()
                changed = ", ".join(sorted({Path(p).name for _, p in changes}))
                log.info("%s changed", changed)
                if child.poll() is None:
                    child.send_signal(signal.SIGHUP)  # reload: see in_place_reload.py
            # Start again a server that asked to be, or that has ended (its steps did not
            # load, say, or it was ending as the change came) since a change it has not seen.
            status = child.poll()
            if status == CANNOT_SERVE:  # no edit gives it its port back: stop watching
                return 1
            if status in _ASKS_FOR_RESTART or (status is not None and changed_at > started):
                log.info("starting the server again")
                child, started = children.replace(child), time.monotonic()
    return 0
