"""Child processes of one command, supervised: `dev`'s server, `start --workers`' workers."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import attrs

# The exit status of a child that cannot serve at all (its port is taken, Redis does not
# answer) and has said why: starting it again would not help, so its supervisor stops.
CANNOT_SERVE = 69  # EX_UNAVAILABLE


class _Stop(Exception):
    """A stop signal reached the supervising process."""


def _on_stop_signal(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def wait_or_kill(child: subprocess.Popen[bytes], grace: float) -> int:
    """Wait `grace` seconds for a child asked to stop; SIGKILL it if it lingers."""
    try:
        return child.wait(grace)
    except subprocess.TimeoutExpired:
        child.kill()
        return child.wait()


@attrs.define
class Children:
    """The running children of `command`; each gets `grace` seconds to stop on SIGTERM."""

    command: list[str]
    grace: float
    running: list[subprocess.Popen[bytes]] = attrs.Factory(list)

    def start(self) -> subprocess.Popen[bytes]:
        """One more child."""
        child = subprocess.Popen(self.command)
        self.running.append(child)
        return child

    def replace(self, child: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
        """A fresh child in the place of `child`, which has ended."""
        fresh = subprocess.Popen(self.command)
        self.running[self.running.index(child)] = fresh
        return fresh

    def stop(self) -> None:
        """SIGTERM to all at once, then wait for each; SIGKILL to those that linger."""
        alive = [child for child in self.running if child.poll() is None]
        for child in alive:
            child.terminate()
        for child in alive:
            wait_or_kill(child, self.grace)


@contextmanager
def supervised(command: list[str], grace: float,
               stop_signals: tuple[signal.Signals, ...]) -> Iterator[Children]:
    """Children of `command`, all stopped when the block ends; one of `stop_signals`
    ends the block (quietly), as its end does."""
    for signum in stop_signals:
        signal.signal(signum, _on_stop_signal)
    children = Children(command, grace)
    try:
        yield children
    except _Stop:
        pass
    finally:
        children.stop()
