"""The project's cattrs converter: request bodies, event inputs, stream data in and out;
and its variant for form fields, whose values are all text."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
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


def _from_text(name: str, parse: Callable[[str], Any]) -> Any:
    def structure(value: Any, _: type[Any]) -> Any:
        if isinstance(value, list):  # a repeated key where the schema wants one value
            raise _StrictTypeError(f"expected one {name}, got {len(value)} values")
        if not isinstance(value, str):
            raise _StrictTypeError(f"expected {name}, got {_json_type(value)}")
        try:
            return parse(value)
        except ValueError:
            raise _StrictTypeError(f"expected {name}, got {value!r}") from None

    return structure


def _int(text: str) -> int:
    if not _INTEGER.fullmatch(text):  # int() would take "1_000", " 5" and "١٢" too
        raise ValueError(text)
    return int(text)


def _float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # JSON has no nan or inf; a form should not either
        raise ValueError(text)
    return number


def _bool(text: str) -> bool:
    try:
        return _BOOLEANS[text.lower()]
    except KeyError:
        raise ValueError(text) from None


_INTEGER = re.compile(r"[-+]?[0-9]+")
# What HTML checkboxes ("on") and most clients send.
_BOOLEANS = {"true": True, "on": True, "1": True, "yes": True,
             "false": False, "off": False, "0": False, "no": False}


def make_form_converter() -> cattrs.Converter:
    """make_converter()'s rules for form fields, whose values are all strings: a string
    where the schema says int, float or bool is converted, or refused naming the field."""
    form = make_converter()
    form.register_structure_hook(str, _from_text("string", str))
    form.register_structure_hook(int, _from_text("integer", _int))
    form.register_structure_hook(float, _from_text("number", _float))
    form.register_structure_hook(bool, _from_text("true or false", _bool))
    return form


converter = make_converter()
form_converter = make_form_converter()


def structure(data: Any, schema: type[T], what: str) -> T:
    """Structure JSON data into `schema`, or raise ValidationError naming each field."""
    return _structure(converter, data, schema, what)


def structure_form(fields: dict[str, Any], schema: type[T], what: str) -> T:
    """Structure form fields (strings, or lists of them) into `schema`, converting text
    where the schema says int, float or bool; ValidationError naming each field."""
    return _structure(form_converter, fields, schema, what)


def _structure(using: cattrs.Converter, data: Any, schema: type[T], what: str) -> T:
    if attrs.has(schema) and not isinstance(data, dict):
        raise ValidationError(f"invalid {what}", [f"expected object, got {_json_type(data)} @ $"])
    try:
        return using.structure(data, schema)
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
