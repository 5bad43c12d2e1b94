"""What the loader checks of a user's function's arguments, and how it names what it found."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any


def accepts(function: Callable[..., Any], count: int) -> bool:
    """Whether `function` can be called with `count` positional arguments and no more."""
    params = list(inspect.signature(function).parameters.values())
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in params if p.default is p.empty
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    varargs = any(p.kind is p.VAR_POSITIONAL for p in params)
    return len(required) <= count and (len(positional) >= count or varargs)


def parameter_names(function: Callable[..., Any]) -> str:
    """`(req, ctx)`: the parameters, as an error shows what was found."""
    return f"({', '.join(inspect.signature(function).parameters)})"


def describe_found(value: object) -> str:
    """What a load error says it found where it expected something else."""
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {value!r}"[:120]
