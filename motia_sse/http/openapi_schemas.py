"""The JSON Schemas of the OpenAPI document: a class used twice, or recursive, becomes a
component, named once; the error bodies every route shares are components too."""

from __future__ import annotations

import collections
import re
from typing import Any

import attrs
import orjson

from motia_sse.http.json_schema import JsonSchema, json_schema
from motia_sse.run.config import ApiRouteConfig

_COMPONENT_NAME = re.compile(r"[^A-Za-z0-9._-]")

# The bodies of the server's refusals and of a failed step; no user schema takes these names.
ERROR_SCHEMAS: dict[str, JsonSchema] = {
    "Error": {
        "type": "object",
        "description": "Every refusal the server gives",
        "properties": {"error": {"type": "string"},
                       "details": {"type": "array", "items": {"type": "string"}}},
        "required": ["error", "details"],
    },
    "StepFailure": {
        "type": "object",
        "description": "A handler that raised",
        "properties": {"error": {"type": "string"},
                       "details": {"type": "array", "items": {"type": "string"}},
                       "trace_id": {"type": "string"}},
        "required": ["error", "details", "trace_id"],
    },
}


def count_uses(routes: list[ApiRouteConfig]) -> collections.Counter[tuple[Any, bool]]:
    """How many times each (class, as a response) is used: a class used twice is a component."""
    uses: collections.Counter[tuple[Any, bool]] = collections.Counter()
    for config in routes:
        if config.body_schema is not None:
            uses[(config.body_schema, False)] += 1
        uses.update((kind, True) for kind in config.response_schema.values())
    return uses


@attrs.define
class Schemas:
    """JSON Schemas for the document: a class used twice, or recursive, is a component.

    A response schema says what the class declares but allows more keys: the server
    checks requests, not answers, and a stream item answers with its `id` too."""

    _uses: collections.Counter[tuple[Any, bool]]
    components: dict[str, JsonSchema] = attrs.Factory(dict)
    _names: dict[bytes, str] = attrs.Factory(dict)

    def of(self, kind: Any, response: bool) -> JsonSchema:
        """The schema of `kind` in a request body, or in a response if `response`."""
        schema = json_schema(kind)
        if response:
            schema = _allow_extra_keys(schema)
        schema = self._lift_defs(schema)
        if self._uses[(kind, response)] < 2 or not isinstance(kind, type) or "$ref" in schema:
            return schema  # used once, or already a component (recursive)
        return self._ref(kind.__name__, schema)

    def _lift_defs(self, schema: JsonSchema) -> JsonSchema:
        # json_schema refers to `#/$defs/...` of its own root; in this document the root
        # is the OpenAPI object, so definitions move to components.
        defs: dict[str, JsonSchema] = schema.pop("$defs", {})
        names = {name: self._name(name, body) for name, body in defs.items()}
        refs = {f"#/$defs/{name}": component for name, component in names.items()}
        for name, component in names.items():
            self.components[component] = _rewrite_refs(defs[name], refs)
        rewritten: JsonSchema = _rewrite_refs(schema, refs)
        return rewritten

    def _ref(self, name: str, schema: JsonSchema) -> JsonSchema:
        name = self._name(name, schema)
        self.components[name] = schema
        return {"$ref": f"#/components/schemas/{name}"}

    def _name(self, name: str, schema: JsonSchema) -> str:
        """The component name of `schema`: the one it got before, else `name`, numbered
        if another schema has it."""
        key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
        if key in self._names:
            return self._names[key]
        base = _COMPONENT_NAME.sub("_", name)
        candidate, n = base, 1
        while candidate in ERROR_SCHEMAS or candidate in self.components:
            n += 1
            candidate = f"{base}_{n}"
        self._names[key] = candidate
        self.components[candidate] = schema
        return candidate


def _rewrite_refs(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: (f"#/components/schemas/{names[v]}" if k == "$ref" and isinstance(v, str)
                    and v in names else _rewrite_refs(v, names)) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite_refs(v, names) for v in value]
    return value


def _allow_extra_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _allow_extra_keys(v) for k, v in value.items()
                if not (k == "additionalProperties" and v is False and "properties" in value)}
    if isinstance(value, list):
        return [_allow_extra_keys(v) for v in value]
    return value
