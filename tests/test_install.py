"""Installable: a wheel built from the checkout, installed into a fresh virtualenv, makes a
project with `motia-sse new` whose own Makefile serves it, workbench included.

Slow (a build, and the dependencies installed from the package index); CI runs it,
`-m 'not slow'` skips it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from motia_sse.testing.processes import HOST, ServerProcess, accepts_connections
from tests.conftest import REPO
from tests.polling import eventually
from tests.sse_parse import SseReader

pytestmark = pytest.mark.slow

# What a build or a run leaves in a checkout; a stale build/lib would leak into the wheel.
LEFTOVERS = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info",
                                   "__pycache__", ".*_cache", ".hypothesis", ".motia",
                                   "bench-results", "node_modules")


def run(argv: list[str | Path], cwd: Path, env: dict[str, str] | None = None,
        ) -> subprocess.CompletedProcess[str]:
    """Run `argv` to completion; fail the test, with its output, if it fails."""
    done = subprocess.run([str(arg) for arg in argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=240, check=False)
    assert done.returncode == 0, f"{argv} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    return done


def activated(venv: Path) -> dict[str, str]:
    """The environment of a shell that activated `venv`, and nothing of this checkout's."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("MOTIA_", "PYTHON", "VIRTUAL_ENV"))}
    return {**env, "VIRTUAL_ENV": str(venv),
            "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}


@pytest.fixture(name="wheel", scope="module")
def _wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip wheel .` of a copy of the checkout, so no build/ is left in (or read from) it."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    shutil.copytree(REPO, source, ignore=LEFTOVERS)
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", "dist", source],
        cwd=work)
    [wheel] = (work / "dist").glob("motia_sse-*.whl")
    return wheel


@pytest.fixture(name="venv", scope="module")
def _venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    """A fresh virtualenv with the wheel installed, its dependencies from the index."""
    venv = tmp_path_factory.mktemp("install") / "venv"
    # This pip installs into it (--python): the same install, without ensurepip's 4 s.
    run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=venv.parent)
    run([sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "-q",
         wheel], cwd=venv.parent)
    return venv


def test_wheel_carries_the_page_and_the_template(wheel: Path) -> None:
    """Every file of static/, steps/ and motia_sse/ is in the wheel, under motia_sse/."""
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = {f"motia_sse/_static/{path.relative_to(REPO / 'static')}"
              for path in (REPO / "static").rglob("*") if path.is_file()}
    wanted |= {f"motia_sse/_examples/{path.name}" for path in (REPO / "steps").glob("*.py")}
    wanted |= {str(path.relative_to(REPO)) for path in (REPO / "motia_sse").rglob("*.py")}
    assert "motia_sse/_static/motia-stream.js" in wanted
    assert sorted(wanted - names) == []


@pytest.fixture(name="project", scope="module")
def _project(tmp_path_factory: pytest.TempPathFactory, venv: Path) -> Path:
    """`motia-sse new demo`, run from the fresh virtualenv."""
    work = tmp_path_factory.mktemp("project")
    run([venv / "bin" / "motia-sse", "new", "demo"], cwd=work, env=activated(venv))
    return work / "demo"


@pytest.fixture(name="served")
def _served(project: Path, venv: Path, tmp_path: Path) -> Iterator[ServerProcess]:
    """The project's `make dev` on a free port of 127.0.0.1, stopped by PID (its group)."""
    server = ServerProcess(["make", "dev"], cwd=project, log=tmp_path / "dev.log", group=True)
    server.env = {**activated(venv), "MOTIA_HOST": HOST, "MOTIA_PORT": str(server.port)}
    try:
        yield server.start(timeout=60)
    finally:
        server.stop()


def test_new_project_names_no_path_of_this_machine(project: Path, venv: Path) -> None:
    """The Makefile finds its Python where make runs: no interpreter path written into it."""
    makefile = (project / "Makefile").read_text()
    assert str(venv) not in makefile
    assert sys.prefix not in makefile
    listed = run(["make", "-s", "steps"], cwd=project, env=activated(venv))
    assert "StartJob" in listed.stdout


def test_installed_motia_sse_is_the_wheel(venv: Path) -> None:
    """The fresh virtualenv imports motia_sse from its own site-packages, not the checkout."""
    where = run([venv / "bin" / "python", "-c", "import motia_sse; print(motia_sse.__file__)"],
                cwd=venv.parent, env=activated(venv))
    assert Path(where.stdout.strip()).is_relative_to(venv)


async def test_made_project_serves_with_its_workbench(served: ServerProcess) -> None:
    """`make dev` in the new project: the page, motia-stream.js, an API step and its feed."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{served.url}/") as page:
            assert page.status == 200, served.output()
            assert "<html" in (await page.text()).lower()
        async with session.get(f"{served.url}/static/motia-stream.js") as library:
            assert library.status == 200, served.output()
        async with session.post(f"{served.url}/jobs", json={"steps": 2, "delay": 0}) as job:
            assert job.status == 200, served.output()
            trace_id = job.headers["x-trace-id"]
        async with session.get(f"{served.url}/streams/progress/{trace_id}/job") as feed:
            await SseReader(feed).until(lambda event: event.json()["status"] == "done",
                                        within=10)
    served.stop()
    await eventually(lambda: not accepts_connections(served.port), within=10)
