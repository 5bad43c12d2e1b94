"""What the wheel holds; the metadata is in setup.cfg.

motia_sse's own packages, found, and the top-level static/ (the workbench page) and steps/
(the example steps `motia-sse new` copies) mapped into it as motia_sse._static and
motia_sse._examples: setup.cfg's `packages = find:` cannot list packages it did not find.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["motia_sse", "motia_sse.*"]),
              "motia_sse._static", "motia_sse._examples"],
    package_dir={"motia_sse._static": "static", "motia_sse._examples": "steps"},
)
