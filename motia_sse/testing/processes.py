"""A motia-sse server or a redis-server run as a child process on a free port of 127.0.0.1."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Self

import attrs

from motia_sse.process.children import wait_or_kill

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def accepts_connections(port: int) -> bool:
    """Whether something listens on 127.0.0.1:`port`."""
    try:
        socket.create_connection((HOST, port), timeout=0.2).close()
    except OSError:
        return False
    return True


def answers_ping(port: int) -> bool:
    """Whether the Redis on 127.0.0.1:`port` answers PING (it may still be loading)."""
    try:
        with socket.create_connection((HOST, port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@attrs.define
class ServerProcess:
    """A server run as a child process on 127.0.0.1:`port`, stopped by its PID.

    `{port}` in `argv` stands for `port`, which may change until it starts. Its output
    is appended to `log`, or dropped without one. With `group`, it leads a process group
    of its own and signals go to the group: a `make` target's children stop with it."""

    argv: list[str]
    cwd: Path | None = None
    env: dict[str, str] | None = None
    log: Path | None = None
    port: int = attrs.Factory(free_port)
    ready: Callable[[int], bool] = accepts_connections
    group: bool = False
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        """The process id (once started)."""
        if self.process is None:
            raise RuntimeError("the process has not been started")
        return self.process.pid

    def command(self) -> list[str]:
        """`argv` with the port in it."""
        return [arg.replace("{port}", str(self.port)) for arg in self.argv]

    def start(self, timeout: float = 15.0) -> Self:
        """Start, and wait until it is `ready` (by default: the port accepts connections)."""
        if self.log is not None:
            self.log.parent.mkdir(parents=True, exist_ok=True)
        command = self.command()
        with open(self.log or os.devnull, "ab") as out:
            self.process = subprocess.Popen(command, cwd=self.cwd, env=self.env, stdout=out,
                                            stderr=subprocess.STDOUT,
                                            start_new_session=self.group)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{shlex.join(command)} exited {self.process.returncode}:"
                                   f"\n{self.output()[-4000:]}")
            if self.ready(self.port):
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"{shlex.join(command)} was not ready on {self.port} "
                                   f"within {timeout}s:\n{self.output()[-4000:]}")
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        """Send `sig` and wait for the end, SIGKILL after `timeout` s; the exit status."""
        if self.process is None:
            return None
        if self.process.poll() is None and self.group:
            _stop_group(self.process, sig, timeout)
        elif self.process.poll() is None:
            self.process.send_signal(sig)
            wait_or_kill(self.process, timeout)
        return self.process.returncode

    def output(self) -> str:
        """What it has written so far."""
        return self.log.read_text(errors="replace") if self.log and self.log.exists() else ""


def _stop_group(leader: subprocess.Popen[bytes], sig: int, timeout: float) -> None:
    """Signal the process group `leader` leads; SIGKILL the group if the leader lingers."""
    os.killpg(leader.pid, sig)
    try:
        leader.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(leader.pid, signal.SIGKILL)
        leader.wait()


def start_argv(*args: str) -> list[str]:
    """`python -m motia_sse start ARGS` on 127.0.0.1:{port}, as a `ServerProcess`'s argv."""
    return [sys.executable, "-m", "motia_sse", "start", "--host", HOST, "--port", "{port}",
            *args]


def _redis_process(redis: RedisServer) -> ServerProcess:
    return ServerProcess([], log=redis.log, ready=answers_ping)


@attrs.define
class RedisServer:
    """A redis-server of our own on a free port of 127.0.0.1, saving nothing unless told."""

    workdir: Path
    log: Path | None = None
    server: ServerProcess = attrs.field(
        init=False, default=attrs.Factory(_redis_process, takes_self=True))

    @property
    def port(self) -> int:
        """Its port on 127.0.0.1."""
        return self.server.port

    @property
    def pid(self) -> int:
        """The process id (once started)."""
        return self.server.pid

    @property
    def url(self) -> str:
        """redis:// URL of this server."""
        return f"redis://{HOST}:{self.port}/0"

    def start(self, timeout: float = 10.0, extra: Sequence[str] = ()) -> Self:
        """Start, with `extra` options, and wait until it answers PING."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install -y redis-server)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.server.argv = [binary, "--port", "{port}", "--bind", HOST, "--save", "",
                            "--appendonly", "no", "--dir", str(self.workdir), *extra]
        self.server.start(timeout)
        return self

    def stop(self) -> None:
        """Kill by PID (SIGKILL), as a crash would."""
        self.server.stop(signal.SIGKILL)
