"""A steps folder's files found and imported as modules, afresh on each load."""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

from motia_sse.exceptions import LoadError
from motia_sse.run.tracebacks import line_in


def find_files(steps_dir: Path, pattern: str) -> list[Path]:
    """The files matching `pattern` under the folder, leaving out hidden folders (.venv,
    .git) and installed packages: `--steps .` must not load a library's test files."""
    return sorted(path for path in steps_dir.rglob(pattern)
                  if not any(part.startswith(".") or part in _NOT_STEPS
                             for part in path.relative_to(steps_dir).parts[:-1]))


_NOT_STEPS = {"site-packages", "dist-packages", "node_modules", "__pycache__"}


def fresh_module_names(steps_dir: Path, files: list[Path]) -> dict[Path, str]:
    """Each file's module name, none of them imported yet, and the folder on sys.path."""
    names = {path: _module_name(steps_dir, path) for path in files}
    _forget(steps_dir, names.values())
    _use_steps_dir(steps_dir)
    return names


def _module_name(steps_dir: Path, path: Path) -> str:
    parts = path.relative_to(steps_dir).with_suffix("").parts
    return ".".join(re.sub(r"\W", "_", p) for p in parts)


_steps_dirs_on_path: list[str] = []


def _use_steps_dir(steps_dir: Path) -> None:
    # Steps import their streams' schemas as plain modules (`from x_stream import X`);
    # a folder loaded before must not stay importable (a reload may point elsewhere).
    for old in _steps_dirs_on_path:
        if old in sys.path:
            sys.path.remove(old)
    _steps_dirs_on_path[:] = [str(steps_dir)]
    sys.path.insert(0, str(steps_dir))


def _forget(steps_dir: Path, module_names: Iterable[str]) -> None:
    # A reload must run the files again, not reuse what an earlier load imported:
    # the steps and streams, and any helper module from the folder they import, or
    # from the folder loaded before (a same-named helper there would shadow this one's).
    folders = [steps_dir, *(Path(old) for old in _steps_dirs_on_path)]
    helpers = [name for name, module in list(sys.modules.items())
               if any(_is_helper(folder, name, getattr(module, "__file__", None))
                      for folder in folders)]
    for name in [*module_names, *helpers]:
        sys.modules.pop(name, None)


def _is_helper(steps_dir: Path, name: str, file: str | None) -> bool:
    """A module of the steps folder's own, not an installed package that happens to live
    under it (`--steps .` beside a .venv) nor motia_sse itself: importing those twice
    would make two of each class."""
    if file is None or not file.startswith(str(steps_dir) + os.sep):
        return False
    installed = {"site-packages", "dist-packages"} & set(Path(file).parts)
    return not installed and name.partition(".")[0] != "motia_sse"


def import_file(path: Path, name: str) -> ModuleType:
    """The file run as module `name`; LoadError at the line that failed, with a hint."""
    if name in sys.modules and getattr(sys.modules[name], "__file__", None) == str(path):
        return sys.modules[name]  # imported by a sibling earlier in this load
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise LoadError(path, "cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        message = f"import failed: {type(exc).__name__}: {exc}{_hint(path, name, exc)}"
        raise LoadError(_where(path, exc), message) from exc
    return module


def _hint(path: Path, name: str, exc: Exception) -> str:
    missing = getattr(exc, "name", None)
    if not isinstance(exc, ModuleNotFoundError) or "." not in name or not missing:
        return ""
    if not (path.parent / f"{missing}.py").exists():
        return ""
    # Only the steps folder itself is on sys.path; subfolders are packages under it.
    package = name.rsplit(".", 1)[0]
    return (f" (a sibling in a subfolder is imported as `from .{missing} import ...` "
            f"or `from {package}.{missing} import ...`)")


def _where(path: Path, exc: BaseException) -> str:
    if isinstance(exc, SyntaxError) and exc.lineno is not None and exc.filename == str(path):
        return f"{path}:{exc.lineno}"
    return line_in(exc, path) or str(path)
