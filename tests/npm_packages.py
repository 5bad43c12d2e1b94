"""The npm packages the React client's test bundles with, installed once into a cache folder.

`python3 tests/npm_packages.py` installs them (.ci/run does, before the tests); the test
calls `install()` too, which does nothing when they are there, so `make test` alone works
on a machine with npm. Standard library only: .ci/run runs it before the virtualenv exists.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

# Pinned: a bundle the test builds today must build the same next year.
PACKAGES = {"react": "19.3.1", "react-dom": "19.3.1", "esbuild": "0.28.2"}


class NpmUnavailable(RuntimeError):
    """npm is missing, or could not install the packages (no network, say)."""


def cache_dir() -> Path:
    """`$MOTIA_NPM_CACHE`, else ~/.cache/motia_sse/npm: outside the checkout, kept across runs."""
    configured = os.environ.get("MOTIA_NPM_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "motia_sse" / "npm"


def installed(folder: Path) -> bool:
    """Whether every package is in `folder` at its pinned version."""
    for name, version in PACKAGES.items():
        manifest = folder / "node_modules" / name / "package.json"
        try:
            if json.loads(manifest.read_text())["version"] != version:
                return False
        except (OSError, ValueError, KeyError):
            return False
    return True


def install(folder: Path | None = None) -> Path:
    """Install the packages into `folder` (default `cache_dir()`) unless they are there;
    return the folder. NpmUnavailable says why when they cannot be had."""
    folder = folder or cache_dir()
    if installed(folder):
        return folder
    npm = shutil.which("npm")
    if npm is None:
        raise NpmUnavailable("npm is not installed (.ci/run installs Debian's nodejs and npm)")
    folder.mkdir(parents=True, exist_ok=True)
    wanted = [f"{name}@{version}" for name, version in PACKAGES.items()]
    command = [npm, "install", "--prefix", str(folder), "--no-audit", "--no-fund",
               "--loglevel=error", *wanted]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
    if done.returncode != 0 or not installed(folder):
        raise NpmUnavailable(f"`npm install {' '.join(wanted)}` failed "
                             f"(exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    return folder


if __name__ == "__main__":
    try:
        print(install())
    except NpmUnavailable as error:
        sys.exit(f"tests/npm_packages.py: {error}")
