"""JSON Schema for the attrs classes that steps and streams declare, as the converter reads them."""

from __future__ import annotations

import datetime
import enum
import types
import typing
from collections.abc import Mapping, MutableMapping, MutableSequence, MutableSet, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

import attrs
import orjson

from motia_sse.converter import unstructure

JsonSchema = dict[str, Any]

_SCALARS: dict[Any, JsonSchema] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
    None: {"type": "null"},
    bytes: {"type": "string"},
    datetime.datetime: {"type": "string", "format": "date-time"},
    datetime.date: {"type": "string", "format": "date"},
}
_ARRAYS = (list, tuple, set, frozenset, Sequence, MutableSequence, AbstractSet, MutableSet)
_OBJECTS = (dict, Mapping, MutableMapping)


def json_schema(kind: Any) -> JsonSchema:
    """The JSON Schema of what the project's converter accepts for `kind`.

    attrs classes become objects whose required properties are the fields without
    a default; extra keys are refused, as the converter refuses them. A class that
    contains itself is written once under `$defs` and referenced.
    """
    builder = _Builder()
    schema = builder.schema(kind)
    if builder.defs:
        schema = {**schema, "$defs": builder.defs}
    return schema


@attrs.define
class _Builder:
    defs: dict[str, JsonSchema] = attrs.field(factory=dict)
    _open: list[type[Any]] = attrs.field(factory=list)
    _recursive: set[type[Any]] = attrs.field(factory=set)

    def schema(self, kind: Any) -> JsonSchema:
        if kind is Any or kind is object:
            return {}
        if kind in _SCALARS:
            return dict(_SCALARS[kind])
        if isinstance(kind, type) and issubclass(kind, enum.Enum):
            return {"title": kind.__name__, "enum": [unstructure(m) for m in kind]}
        if isinstance(kind, type) and attrs.has(kind):
            return self._attrs_class(kind)
        origin, args = typing.get_origin(kind), typing.get_args(kind)
        if origin is typing.Union or origin is types.UnionType:
            return {"anyOf": [self.schema(arg) for arg in args]}
        if origin is typing.Literal:
            return {"enum": list(args)}
        if origin is typing.Annotated:
            return self.schema(args[0])
        if origin is tuple or kind is tuple:
            return self._tuple(args)
        if origin in _ARRAYS or kind in _ARRAYS:
            array: JsonSchema = {"type": "array", "items": self.schema(args[0]) if args else {}}
            if origin in (set, frozenset, AbstractSet, MutableSet):
                array["uniqueItems"] = True
            return array
        if origin in _OBJECTS or kind in _OBJECTS:
            values = self.schema(args[1]) if len(args) == 2 else {}
            return {"type": "object", "additionalProperties": values}
        # Something the converter was taught about elsewhere: accept anything, say what.
        return {"x-python-type": getattr(kind, "__qualname__", repr(kind))}

    def _tuple(self, args: tuple[Any, ...]) -> JsonSchema:
        if not args or (len(args) == 2 and args[1] is Ellipsis):
            return {"type": "array", "items": self.schema(args[0]) if args else {}}
        return {"type": "array", "prefixItems": [self.schema(a) for a in args],
                "items": False, "minItems": len(args), "maxItems": len(args)}

    def _attrs_class(self, cls: type[Any]) -> JsonSchema:
        if cls in self._open:
            self._recursive.add(cls)
            return {"$ref": f"#/$defs/{cls.__qualname__}"}
        self._open.append(cls)
        try:
            schema = self._object(cls)
        finally:
            self._open.pop()
        if cls in self._recursive:
            self.defs[cls.__qualname__] = schema
            return {"$ref": f"#/$defs/{cls.__qualname__}"}
        return schema

    def _object(self, cls: type[Any]) -> JsonSchema:
        hints = _type_hints(cls)
        properties: dict[str, JsonSchema] = {}
        required: list[str] = []
        for field in attrs.fields(cls):
            if not field.init:
                continue  # the converter never reads it
            prop = self.schema(hints.get(field.name, field.type))
            if field.default is attrs.NOTHING:
                required.append(field.name)
            elif (default := _json_default(field.default)) is not attrs.NOTHING:
                prop["default"] = default
            if description := field.metadata.get("description"):
                prop["description"] = str(description)
            properties[field.name] = prop
        schema: JsonSchema = {"title": cls.__name__, "type": "object", "properties": properties,
                              "required": required, "additionalProperties": False}
        if cls.__doc__:
            schema["description"] = cls.__doc__.strip()
        return schema


def _type_hints(cls: type[Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # a forward reference the module cannot resolve: use what attrs has
        return {f.name: f.type for f in attrs.fields(cls) if not isinstance(f.type, str)}


def _json_default(default: Any) -> Any:
    """The default as JSON, or NOTHING when it is made per instance or is not JSON."""
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]  # Factory is a class
        return attrs.NOTHING
    try:
        # A round trip, so the default reads as it would in a request: tuples and sets as lists.
        return orjson.loads(orjson.dumps(unstructure(default), default=_set_as_list))
    except TypeError:
        return attrs.NOTHING


def _set_as_list(value: Any) -> list[Any]:
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    raise TypeError(f"{type(value).__name__} is not JSON")
