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


def test_a_typed_middleware_passes(write_steps: WriteSteps) -> None:
    """A middleware typed with Middleware and Next, listed on a route, passes as it is;
    one that forgets `return` is caught."""
    steps = write_steps({"guarded_step.py":
        "from typing import Any\n"
        "from motia_sse import (ApiRequest, ApiResponse, ApiRouteConfig, FlowContext, "
        "Middleware, Next)\n"
        "async def auth(req: ApiRequest[Any], ctx: FlowContext, next: Next) -> ApiResponse:\n"
        "    if 'authorization' not in req.headers:\n"
        "        return ApiResponse(status=401, body={'error': 'unauthorized'})\n"
        "    response = await next()\n"
        "    return ApiResponse(response.status, response.body, {**response.headers, 'x': '1'})\n"
        "async def forgetful(req: ApiRequest[Any], ctx: FlowContext, next: Next) -> None:\n"
        "    await next()\n"
        "shared: list[Middleware] = [auth]\n"
        "config = ApiRouteConfig(name='Guarded', path='/g', method='GET', middleware=shared)\n"
        "wrong = ApiRouteConfig(name='Wrong', path='/w', method='GET', middleware=[forgetful])\n"
        "async def handler(req: ApiRequest[None], ctx: FlowContext) -> ApiResponse:\n"
        "    return ApiResponse(status=200, body={'ok': True})\n"})
    done = mypy_strict(steps)
    errors = [line for line in done.stdout.splitlines() if "guarded_step.py:" in line]
    assert len(errors) == 1, done.stdout
    assert "guarded_step.py:12: error: List item 0 has incompatible type" in errors[0]
