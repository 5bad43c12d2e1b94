"""The one cattrs converter: request bodies, event inputs, stream data in and out."""

from __future__ import annotations

from typing import Any, TypeVar

import attrs
import cattrs
import orjson
from cattrs.preconf.json import configure_converter
from cattrs.v import format_exception

from motia_sse.exceptions import ValidationError

T = TypeVar("T")


class _StrictTypeError(TypeError):
    """A JSON value of the wrong type; its message is already what a user should read."""


def _strict(kind: type[Any], accepts: tuple[type[Any], ...], name: str) -> Any:
    def structure(value: Any, _: type[Any]) -> Any:
        # bool is an int in Python, but never in a JSON schema.
        if isinstance(value, bool) and kind is not bool:
            raise _StrictTypeError(f"expected {name}, got boolean")
        if not isinstance(value, accepts):
            raise _StrictTypeError(f"expected {name}, got {_json_type(value)}")
        return kind(value)

    return structure


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "array",
        dict: "object",
    }.get(type(value), type(value).__name__)


def make_converter() -> cattrs.Converter:
    """A JSON converter that refuses extra keys and silent coercions."""
    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    configure_converter(converter)
    # cattrs would turn 5 into "5" and "5" into 5; a JSON API should say no.
    converter.register_structure_hook(str, _strict(str, (str,), "string"))
    converter.register_structure_hook(int, _strict(int, (int,), "integer"))
    converter.register_structure_hook(float, _strict(float, (int, float), "number"))
    converter.register_structure_hook(bool, _strict(bool, (bool,), "boolean"))
    return converter


converter = make_converter()


def structure(data: Any, schema: type[T], what: str) -> T:
    """Structure JSON data into `schema`, or raise ValidationError naming each field."""
    if attrs.has(schema) and not isinstance(data, dict):
        raise ValidationError(f"invalid {what}", [f"expected object, got {_json_type(data)} @ $"])
    try:
        return converter.structure(data, schema)
    except Exception as exc:  # cattrs raises many kinds; all mean "does not fit"
        raise ValidationError(
            f"invalid {what}", cattrs.transform_error(exc, format_exception=_describe)
        ) from None


def _describe(exc: BaseException, kind: type[Any] | None) -> str:
    if isinstance(exc, _StrictTypeError):
        return str(exc)
    return format_exception(exc, kind)


def unstructure(value: Any) -> Any:
    """Turn attrs instances (and containers of them) into JSON-ready data."""
    return converter.unstructure(value)


def to_json(value: Any) -> bytes:
    """`value` as JSON: what orjson encodes itself (dicts, lists, strings, numbers,
    datetimes) directly, everything else (attrs instances, sets) through `unstructure`."""
    return orjson.dumps(value, default=unstructure)
