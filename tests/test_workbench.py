"""The workbench's introspection endpoints, JSON Schema generation and static files."""

from __future__ import annotations

import enum
import re
from typing import Any, Literal

import attrs
import pytest
from aiohttp.test_utils import TestClient
from yarl import URL

from motia_sse.converter import structure
from motia_sse.exceptions import ValidationError
from motia_sse.http.json_schema import json_schema
from motia_sse.runtime import RUNTIME

PROMPT_SCHEMA = {"title": "Prompt", "type": "object", "properties": {"message": {"type": "string"}},
                 "required": ["message"], "additionalProperties": False}
MESSAGE_SCHEMA = {
    "title": "OpenAiMessage", "type": "object",
    "properties": {"message": {"type": "string"},
                   "error": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}},
    "required": ["message"], "additionalProperties": False,
}


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@attrs.frozen
class Point:
    x: float
    y: float = 0.0


@attrs.frozen
class Shape:
    """A shape, for the schema tests."""

    name: str
    points: list[Point]
    color: Color = Color.RED
    tags: frozenset[str] = frozenset()
    weights: dict[str, int | None] = attrs.Factory(dict)
    kind: Literal["open", "closed"] = "closed"
    pair: tuple[int, str] = (1, "a")
    extra: Any = None
    visible: bool = attrs.field(default=True, metadata={"description": "drawn or not"})
    _secret: str = "s"
    cached: int = attrs.field(default=0, init=False)


@attrs.frozen
class Tree:
    label: str
    children: list[Tree] = attrs.Factory(list)


async def test_steps_describe_routes_topics_and_schemas(client: TestClient[Any, Any]) -> None:
    """`/__motia/steps`: every step with its kind, route or topics, flows, JSON Schemas
    and (event and cron steps) queue settings."""
    response = await client.get("/__motia/steps")
    assert response.status == 200
    steps = {s["name"]: s for s in await response.json()}
    assert set(steps) == {"OpenAiApi", "StartJob", "CallOpenAi", "RunJob"}
    assert steps["OpenAiApi"] == {
        "name": "OpenAiApi", "type": "api", "method": "POST", "path": "/open-ai",
        "file": "open_ai_api_step.py",
        "description": "Call OpenAI; the answer streams into /streams/openai/<trace id>/message",
        "emits": [{"topic": "openai-prompt", "label": None, "conditional": False}],
        "virtualEmits": [], "virtualSubscribes": [], "flows": ["open-ai"], "queryParams": [],
        "middleware": [],
        "bodySchema": PROMPT_SCHEMA, "responseSchema": {"200": MESSAGE_SCHEMA},
    }
    assert steps["CallOpenAi"] == {
        "name": "CallOpenAi", "type": "event", "file": "call_open_ai_step.py",
        "description": "Stream the model's answer into the openai stream",
        "subscribes": ["openai-prompt"], "emits": [], "flows": ["open-ai"],
        "virtualEmits": [], "virtualSubscribes": [],
        "inputSchema": PROMPT_SCHEMA,
        # The server's defaults: the step sets none of its own (test_workbench_settings.py).
        "settings": {"max_attempts": 3, "backoff": 0.5, "timeout": None, "concurrency": None,
                     "own": []},
    }
    job = steps["StartJob"]["bodySchema"]
    assert job["properties"] == {"steps": {"type": "integer", "default": 20},
                                 "delay": {"type": "number", "default": 0.25}}
    assert job["required"] == []


async def test_streams_list_names_and_schemas(client: TestClient[Any, Any]) -> None:
    """`/__motia/streams`: each stream's name, file, storage and item schema."""
    response = await client.get("/__motia/streams")
    assert response.status == 200
    streams = {s["name"]: s for s in await response.json()}
    assert streams["openai"] == {"name": "openai", "file": "open_ai_stream.py",
                                 "storageType": "default", "schema": MESSAGE_SCHEMA}
    assert streams["progress"]["schema"]["required"] == ["status", "done", "total"]


async def test_group_lists_items_oldest_first(client: TestClient[Any, Any]) -> None:
    """A group's items, oldest first, as `get_group` gives them; other groups left out."""
    progress = client.app[RUNTIME].streams["progress"]
    await progress.set("g 1", "b", {"status": "running", "done": 1, "total": 2})
    await progress.set("g 1", "a", {"status": "done", "done": 2, "total": 2})
    await progress.set("other", "c", {"status": "queued", "done": 0, "total": 1})
    response = await client.get("/__motia/streams/progress/groups/g%201")
    assert response.status == 200
    items = await response.json()
    assert [i["id"] for i in items] == ["b", "a"]
    assert items[1] == {"status": "done", "done": 2, "total": 2, "id": "a",
                        "__motia": {"type": "state-stream", "streamName": "progress",
                                    "groupId": "g 1", "id": "a"}}
    empty = await client.get("/__motia/streams/progress/groups/nobody")
    assert await empty.json() == []


async def test_group_of_unknown_stream_is_404(client: TestClient[Any, Any]) -> None:
    """An unknown stream is a 404 naming the streams there are."""
    response = await client.get("/__motia/streams/nope/groups/g")
    assert response.status == 404
    assert await response.json() == {"error": "no stream named 'nope'",
                                     "details": ["defined streams: openai, progress"]}


async def test_group_with_bad_id_is_400(client: TestClient[Any, Any]) -> None:
    """A group id that cannot be one is a 400 with the reason."""
    response = await client.get(f"/__motia/streams/progress/groups/{'x' * 300}")
    assert response.status == 400
    body = await response.json()
    assert body["error"] == "invalid group id"
    assert body["details"] == ["expected 1 to 256 characters, got 300"]


@pytest.mark.parametrize("limit", ["0", "1001", "ten", "\u00b2", "9" * 5000],
                         ids=["zero", "over", "word", "superscript", "long"])
async def test_dead_letters_limit_is_1_to_1000(client: TestClient[Any, Any], limit: str) -> None:
    """A limit that is not a whole number from 1 to 1000 is a JSON 400 naming it."""
    response = await client.get("/__motia/dead-letters", params={"limit": limit})
    assert response.status == 400
    assert await response.json() == {
        "error": "invalid limit", "details": [f"limit: expected 1 to 1000, got {limit!r}"]}


def test_schema_of_attrs_class() -> None:
    """Fields become typed properties; required are those without defaults; no extras."""
    schema = json_schema(Shape)
    assert schema["title"] == "Shape"
    assert schema["description"] == "A shape, for the schema tests."
    assert schema["required"] == ["name", "points"]
    assert schema["additionalProperties"] is False
    props = schema["properties"]
    assert list(props) == ["name", "points", "color", "tags", "weights", "kind", "pair",
                           "extra", "visible", "_secret"]
    assert props["name"] == {"type": "string"}
    assert props["points"] == {"type": "array", "items": {
        "title": "Point", "type": "object",
        "properties": {"x": {"type": "number"}, "y": {"type": "number", "default": 0.0}},
        "required": ["x"], "additionalProperties": False}}
    assert props["color"] == {"title": "Color", "enum": ["red", "blue"], "default": "red"}
    assert props["tags"] == {"type": "array", "items": {"type": "string"}, "uniqueItems": True,
                             "default": []}
    assert props["weights"] == {"type": "object", "additionalProperties": {
        "anyOf": [{"type": "integer"}, {"type": "null"}]}}
    assert props["kind"] == {"enum": ["open", "closed"], "default": "closed"}
    assert props["pair"] == {"type": "array", "prefixItems": [{"type": "integer"},
                                                              {"type": "string"}],
                             "items": False, "minItems": 2, "maxItems": 2, "default": [1, "a"]}
    assert props["extra"] == {"default": None}
    assert props["visible"] == {"type": "boolean", "default": True,
                                "description": "drawn or not"}


def test_schema_keys_are_what_the_converter_reads() -> None:
    """The property names are the keys the converter structures (private fields too)."""
    props = json_schema(Shape)["properties"]
    data = {"name": "n", "points": [{"x": 1}], "_secret": "t"}
    assert set(data) <= set(props)
    assert structure(data, Shape, "shape").points == [Point(1.0)]
    with pytest.raises(ValidationError):
        structure({**data, "cached": 1}, Shape, "shape")


def test_recursive_class_is_referenced() -> None:
    """A class that contains itself is defined once under $defs."""
    assert json_schema(Tree) == {
        "$ref": "#/$defs/Tree",
        "$defs": {"Tree": {
            "title": "Tree", "type": "object",
            "properties": {"label": {"type": "string"},
                           "children": {"type": "array", "items": {"$ref": "#/$defs/Tree"}}},
            "required": ["label"], "additionalProperties": False}},
    }


@pytest.mark.parametrize(("kind", "expected"), [
    (str, {"type": "string"}),
    (int, {"type": "integer"}),
    (float, {"type": "number"}),
    (bool, {"type": "boolean"}),
    (None, {"type": "null"}),
    (str | None, {"anyOf": [{"type": "string"}, {"type": "null"}]}),
    (list[int], {"type": "array", "items": {"type": "integer"}}),
    (tuple[int, ...], {"type": "array", "items": {"type": "integer"}}),
    (dict[str, float], {"type": "object", "additionalProperties": {"type": "number"}}),
    (dict, {"type": "object", "additionalProperties": {}}),
    (Any, {}),
])
def test_schema_of_plain_types(kind: Any, expected: dict[str, Any]) -> None:
    """Builtins, unions and containers map to their JSON Schema types."""
    assert json_schema(kind) == expected


@pytest.mark.parametrize("path", [
    "static/..%2F..%2Fsetup.cfg", "static/%2E%2E/%2E%2E/setup.cfg", "static/..%5C..%5Csetup.cfg",
    "static/nope.js", "static/views", "static/", "static//etc/passwd",
    # Paths that cannot name a file at all: too long a name, a NUL byte.
    "static/" + "a" * 300, "static/%00", "static/app.js%00.png", "static/" + "a/" * 3000])
async def test_static_files_stay_inside_their_folder(client: TestClient[Any, Any],
                                                     path: str) -> None:
    """Only files under static/ are served; anything else is a JSON 404."""
    response = await client.session.get(URL(str(client.make_url("/")) + path, encoded=True))
    assert response.status == 404, path
    assert (await response.json())["error"] == "Not Found"


async def test_page_and_its_modules_are_served(client: TestClient[Any, Any]) -> None:
    """`/` is the page; every module it imports, transitively, is served and revalidated."""
    page = await client.get("/")
    assert page.status == 200
    assert page.headers["Cache-Control"] == "no-cache"
    html = await page.text()
    # Relative to the page, so that it works under a proxy's sub-path too.
    assert '<script type="module" src="static/app.js">' in html
    pending, seen = ["/static/app.js", "/static/motia-stream.js"], set()
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        response = await client.get(path)
        assert response.status == 200, path
        assert response.content_type in ("application/javascript", "text/javascript"), path
        assert response.headers["Cache-Control"] == "no-cache"
        base = path.rsplit("/", 1)[0]
        for spec in re.findall(r'^import .*? from "(\.\.?/[^"]+)";', await response.text(),
                               flags=re.MULTILINE):
            pending.append(_join(base, spec))
    assert len(seen) >= 8
    css = await client.get("/static/style.css")
    assert css.status == 200


def _join(base: str, relative: str) -> str:
    parts = base.split("/")
    for segment in relative.split("/"):
        if segment == "..":
            parts.pop()
        elif segment != ".":
            parts.append(segment)
    return "/".join(parts)
