"""The folders shipped beside the code: the workbench page and the `new` template."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def static_dir() -> Path:
    """The workbench page: index.html, motia-stream.js and the modules they load."""
    return _folder("_static", checkout="static")


def examples_dir() -> Path:
    """The example steps `motia-sse new` copies into a project."""
    return _folder("_examples", checkout="steps")


def _folder(packaged: str, checkout: str) -> Path:
    # A wheel installs the top-level folder as motia_sse/<packaged> (setup.py maps it). An
    # editable install maps the same name to the checkout's folder, but setuptools' import
    # hook cannot import a mapped folder without an __init__.py (pypa/setuptools#4943): from
    # a checkout, editable or not, the folder is the one beside the package.
    installed = files("motia_sse") / packaged
    if isinstance(installed, Path) and installed.is_dir():
        return installed
    return Path(__file__).resolve().parents[1] / checkout
