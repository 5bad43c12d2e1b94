"""Route paths: Motia's `/users/:id` and aiohttp's `/users/{id}` as one template, checked.

A step file may write a path parameter either way; the loader turns the path into the
`{id}` template once, and the router, `req.path_params`, the workbench and OpenAPI all
read that template.
"""

from __future__ import annotations

import re

from aiohttp import web

# aiohttp's `{name}` and `{name:regex}` parameters; a regex may hold one level of braces.
PARAM = re.compile(r"\{(?P<name>[_a-zA-Z][_a-zA-Z0-9]*)(?::(?P<regex>(?:[^{}]|\{[^{}]*\})+))?\}")
# Whatever is in braces, split out as aiohttp's router splits a path (its ROUTE_RE),
# widened to take `{}` and `{1d}` too, so that those get a message of their own.
_BRACED = re.compile(r"(\{[^{}]*(?:\{[^{}]*\}[^{}]*)*\})")
# A Motia (Express-style) parameter: a colon that opens a segment. A colon elsewhere,
# as in Google-style `/models:generate`, is an ordinary character.
_COLON = re.compile(r"(?<=/):([^/]*)")
_NAME = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")


class BadPath(ValueError):
    """A route path that cannot be served; the message says why."""


def route_template(path: str) -> str:
    """`path` with each `:name` segment written `{name}`; BadPath if a parameter has no
    valid name, a name repeats, or the path mixes `:name` and `{name}`."""
    colon_names: list[str] = []
    brace_names: list[str] = []
    parts = _BRACED.split(path)
    for i, part in enumerate(parts):
        if i % 2:  # a braced part
            brace_names.append(_brace_name(path, part))
        elif "{" in part or "}" in part:
            raise BadPath(f"path {path!r} has an unmatched brace in {part!r}")
        else:
            parts[i] = _COLON.sub(lambda m: _colon_param(path, m[1], colon_names), part)
    if colon_names and brace_names:
        raise BadPath(f"path {path!r} mixes :name and {{name}} parameters; write them all "
                      "one way")
    names = colon_names or brace_names
    if repeated := sorted({n for n in names if names.count(n) > 1}):
        raise BadPath(f"path {path!r} names the parameter {repeated[0]!r} more than once; "
                      "each needs a name of its own")
    template = "".join(parts)
    if brace_names:
        _check_regexes(path, template)
    return template


def _brace_name(path: str, part: str) -> str:
    match = PARAM.fullmatch(part)
    if match is None:
        raise BadPath(f"path {path!r}: {part} is not a path parameter; expected {{name}} or "
                      "{name:regex}, the name a letter or _ then letters, digits or _")
    return match["name"]


def _colon_param(path: str, name: str, names: list[str]) -> str:
    if not _NAME.fullmatch(name):
        what = f"':{name}' is not a parameter name" if name else "':' names no parameter"
        raise BadPath(f"path {path!r}: {what}; expected a letter or _ then letters, digits "
                      "or _ up to the next '/' (for a parameter inside a segment write "
                      "{name}, as in /files/{name}.json)")
    names.append(name)
    return "{" + name + "}"


def _check_regexes(path: str, template: str) -> None:
    # The router compiles each `{name:regex}`; a broken one would stop the server at
    # start, far from the file that has it.
    try:
        web.DynamicResource(template)
    except ValueError as exc:
        raise BadPath(f"path {path!r} is not a route: {exc}") from None
