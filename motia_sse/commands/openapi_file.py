"""`motia-sse openapi`: the OpenAPI document `/openapi.json` would serve, without a server."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

from motia_sse.converter import unstructure
from motia_sse.http.openapi import openapi_document
from motia_sse.run.loader import load_project
from motia_sse.settings import Settings


def write_openapi(settings: Settings, output: Path | None) -> int:
    """Write the document of `settings.steps_dir` to `output` (stdout without one); 0.
    Raises LoadErrors if a step file is broken."""
    document = openapi_document(load_project(settings.steps_dir), settings)
    # Indented, with a final newline: a file people commit and diff.
    text = orjson.dumps(document, default=unstructure, option=orjson.OPT_INDENT_2) + b"\n"
    if output is None:
        sys.stdout.buffer.write(text)
    else:
        output.write_bytes(text)
        print(f"wrote {output}", file=sys.stderr)
    return 0
