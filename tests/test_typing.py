"""The public API is typed: steps written against it pass `mypy --strict`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import EXAMPLE_STEPS, REPO, WriteSteps


def mypy_strict(folder: Path) -> subprocess.CompletedProcess[str]:
    """Run mypy --strict on a steps folder, as a user's CI would (the repo's cache
    keeps it quick; `make lint` has usually filled it)."""
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--explicit-package-bases", str(folder)],
        cwd=REPO, env={**os.environ, "MYPYPATH": str(folder)}, capture_output=True,
        text=True, timeout=300, check=False)


def test_example_steps_pass_mypy_strict() -> None:
    """The example steps type-check against the installed package (py.typed ships)."""
    done = mypy_strict(EXAMPLE_STEPS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (REPO / "motia_sse" / "py.typed").exists()


def test_a_typing_mistake_is_caught(write_steps: WriteSteps) -> None:
    """A step that misuses the API fails the same check, naming the line."""
    steps = write_steps({"wrong_step.py":
        "from motia_sse import ApiRequest, ApiResponse, ApiRouteConfig, FlowContext\n"
        "config = ApiRouteConfig(name='Wrong', path='/w', method='GET', emits=[1])\n"
        "async def handler(req: ApiRequest[None], ctx: FlowContext) -> ApiResponse:\n"
        "    return ApiResponse(status='ok')\n"})
    done = mypy_strict(steps)
    assert done.returncode == 1
    assert "wrong_step.py:2: error" in done.stdout
    assert "wrong_step.py:4: error" in done.stdout
