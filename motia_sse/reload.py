"""`motia-sse dev`: serve in a child process, restart it when the steps change.

A restart takes well under a second; open feeds reconnect by themselves and resume
with Last-Event-ID, and the embedded store and queue keep items and pending events
across it. A change that breaks loading does not restart anything: the errors are
printed and the running server goes on until the files load again.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType

from watchfiles import PythonFilter, watch

from motia_sse.config import Settings
from motia_sse.exceptions import LoadErrors
from motia_sse.loader import load_project

log = logging.getLogger("motia_sse")


class _Stop(Exception):
    """SIGTERM to the watcher: stop the server too."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def serve_with_reload(settings: Settings, argv: list[str]) -> int:
    """Run `start` with the same options in a child; restart it on changes."""
    command = [sys.executable, "-m", "motia_sse", "start",
               *[a for a in argv[1:] if a != "--no-reload"], "--host", settings.host]
    signal.signal(signal.SIGTERM, _on_sigterm)
    child = subprocess.Popen(command)
    log.info("watching %s for changes", settings.steps_dir)
    try:
        for changes in watch(settings.steps_dir, watch_filter=PythonFilter(),
                             yield_on_timeout=True, rust_timeout=500, raise_interrupt=False):
            if not changes:
                continue
            if not _loads(settings.steps_dir):
                continue
            changed = ", ".join(sorted({Path(p).name for _, p in changes}))
            log.info("%s changed: restarting", changed)
            _stop(child, settings.shutdown_timeout)
            child = subprocess.Popen(command)
    except _Stop:
        pass
    finally:
        _stop(child, settings.shutdown_timeout)
    return 0


def _loads(steps_dir: Path) -> bool:
    try:
        load_project(steps_dir)
    except LoadErrors as exc:
        log.error("not restarting; the running server goes on. Fix these first:\n%s",
                  "\n".join(f"  {e}" for e in exc.errors))
        return False
    return True


def _stop(child: subprocess.Popen[bytes], grace: float) -> None:
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(grace + 5)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
