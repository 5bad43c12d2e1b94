"""`motia-sse new NAME`: a project that runs at once, with the example steps."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from motia_sse.package_data import examples_dir

EXAMPLES = examples_dir()

# No path from the machine that made the project: the Python is found where make runs.
MAKEFILE = """\
# The Python with motia_sse installed: the project's .venv if it has one, else python3 on
# PATH (an activated virtualenv's); or name it: make dev PYTHON=/path/to/bin/python
PYTHON ?= $(or $(wildcard .venv/bin/python),python3)

.PHONY: dev start steps

dev:
\t$(PYTHON) -m motia_sse dev --steps steps

start:
\t$(PYTHON) -m motia_sse start --steps steps

steps:
\t$(PYTHON) -m motia_sse steps --steps steps
"""

README = """\
# {name}

A motia_sse project: step files served as REST endpoints, event
steps and live Server-Sent Event feeds.

    make dev      # http://localhost:3000: the workbench; edits under steps/ reload

`make` runs the Python of the virtualenv where motia_sse is installed: activate it first
(or create `.venv/` here and install motia_sse into it, or `make dev PYTHON=...`).

Try it:

    curl -si -X POST localhost:3000/jobs -d '{{"steps": 10, "delay": 0.5}}'
    curl -N localhost:3000/streams/progress/<x-trace-id from above>/job

`steps/` holds the examples: a progress job that needs nothing, and an OpenAI chat
completion streamed into an item (set OPENAI_API_KEY, and OPENAI_BASE_URL for a
compatible server). `make steps` lists what is loaded.
"""


def create_project(target: Path) -> int:
    """Create `target` with steps, a Makefile and a README; 1 if it exists."""
    if target.exists():
        print(f"motia-sse: {target} already exists; choose a new name", file=sys.stderr)
        return 1
    if not EXAMPLES.is_dir():
        print(f"motia-sse: the example steps are not installed ({EXAMPLES})", file=sys.stderr)
        return 1
    target.mkdir(parents=True)
    shutil.copytree(EXAMPLES, target / "steps",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (target / "Makefile").write_text(MAKEFILE)
    (target / "README.md").write_text(README.format(name=target.name))
    (target / ".gitignore").write_text(".motia/\n.venv/\n__pycache__/\n")
    print(f"created {target}: cd {target} && make dev")
    return 0
