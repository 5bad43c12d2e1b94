"""Instructions per API request under callgrind: motia_sse against the bare handler.

Wall-clock figures on this shared machine swing by a third between runs; callgrind
counts instructions, which do not depend on what else the machine is doing. Each
server runs under `valgrind --tool=callgrind` twice, answering `FEW` and then `MANY`
sequential keep-alive POSTs; the difference of the two totals, divided by
`MANY - FEW`, is the cost of one request with start-up and shutdown taken out.

    .venv/bin/python -m bench.instructions            # both servers, ~3 minutes
    .venv/bin/python -m bench.instructions --metrics  # motia_sse with /metrics on
"""

from __future__ import annotations

import argparse
import http.client
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.procs import BENCH_STEPS, REPO
from motia_sse.testing import free_port

FEW, MANY = 200, 1200
BODY = b'{"n":1}'


def _command(side: str, port: int, extra: list[str]) -> list[str]:
    if side == "baseline":
        return [sys.executable, "-m", "bench.baseline", "--port", str(port)]
    return [sys.executable, "-m", "motia_sse", "start", "--host", "127.0.0.1",
            "--port", str(port), "--steps", str(BENCH_STEPS), "--store", "memory", *extra]


def _post(port: int, count: int, deadline: float) -> None:
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            connection.connect()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    for _ in range(count):
        connection.request("POST", "/bench/noop", BODY, {"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"POST /bench/noop answered {response.status}")
    connection.close()


def instructions(side: str, count: int, workdir: Path, extra: list[str]) -> int:
    """Total instructions of one server process that answered `count` requests;
    `extra`: more options of motia_sse's command line."""
    port = free_port()
    out = workdir / f"{side}-{count}.callgrind"
    process = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
         *_command(side, port, extra)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _post(port, count, time.monotonic() + 300)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(300)
    totals = re.search(r"^totals:\s+(\d+)", out.read_text(), re.MULTILINE)
    if totals is None:
        raise RuntimeError(f"no totals in {out}")
    return int(totals.group(1))


def per_request(side: str, workdir: Path, extra: list[str]) -> float:
    """Instructions per request, start-up and shutdown taken out."""
    return ((instructions(side, MANY, workdir, extra) - instructions(side, FEW, workdir, extra))
            / (MANY - FEW))


def main() -> int:
    """Print instructions per request of both servers and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", action="store_true",
                        help="run motia_sse with --metrics (each answer counted and timed)")
    extra = ["--metrics"] if parser.parse_args().metrics else []
    if shutil.which("valgrind") is None:
        print("needs valgrind (apt-get install -y valgrind)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        found = {side: per_request(side, Path(tmp), extra) for side in ("baseline", "motia")}
    ratio = found["motia"] / found["baseline"]
    print(f"instructions per request: motia_sse {found['motia']:,.0f}, "
          f"baseline {found['baseline']:,.0f}, ratio {ratio:.2f} "
          f"(requests/s ratio at equal IPC: {1 / ratio:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
