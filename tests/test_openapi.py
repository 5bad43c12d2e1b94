"""/openapi.json: OpenAPI 3.1 from the API steps' schemas, and the feeds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from motia_sse import Settings, create_app
from motia_sse.http.json_schema import json_schema
from motia_sse.http.openapi import add_openapi, openapi_document
from motia_sse.run.config import ApiRouteConfig
from motia_sse.run.loader import load_project
from tests.conftest import ClientFactory, WriteSteps

USERS_STEP = '''
import attrs
from motia_sse import ApiRouteConfig, QueryParam

@attrs.frozen
class Node:
    """A tree."""
    name: str
    children: list["Node"] = attrs.Factory(list)

@attrs.frozen
class User:
    name: str

config = ApiRouteConfig(
    name="PutUser", path="/users/{user}/items/{n:\\\\d+}", method="PUT", body_schema=User,
    response_schema={200: User, 201: Node, 400: User},
    query_params=[QueryParam("verbose", "Say more"), QueryParam("verbose", "again")],
    flows=["users"], description="Replace a user.\\nThe second line says more.")

async def handler(req, ctx):
    return {"status": 200, "body": None}
'''

GET_USER_STEP = '''
from motia_sse import ApiRouteConfig
from users_step import Node, User

config = ApiRouteConfig(name="GetUser", path="/users/{user}",
                        response_schema={200: User, 202: Node})

async def handler(req, ctx):
    return {"status": 200, "body": {"name": req.path_params["user"]}}
'''

# Another class called User: both are components, under different names.
OTHER_USER_STEP = '''
import attrs
from motia_sse import ApiRouteConfig

@attrs.frozen
class User:
    email: str

config = ApiRouteConfig(name="Invite", path="/invites", method="POST",
                        response_schema={200: User, 202: User})

async def handler(req, ctx):
    return {"status": 202, "body": {"email": "a@b.c"}}
'''

INBOX_STREAM = '''
import attrs
from motia_sse import StreamConfig

@attrs.frozen
class Message:
    text: str

config = StreamConfig(name="inbox", schema=Message, can_access=lambda sub, auth: auth is not None)
'''

PING_STEP = '''
from motia_sse import ApiRouteConfig

config = ApiRouteConfig(name="Ping", path="/ping")

async def handler(req, ctx):
    return {"status": 200, "body": "pong"}
'''


async def serve(make_client: ClientFactory, settings: Settings) -> TestClient[Any, Any]:
    """The app of `settings` with /openapi.json, on a real socket."""
    app = create_app(settings)
    if not any(r.resource is not None and r.resource.canonical == "/openapi.json"
               for r in app.router.routes()):  # create_app may serve it already
        add_openapi(app)
    return await make_client(settings, app)


def response_validator(document: dict[str, Any], schema: dict[str, Any]) -> OAS31Validator:
    """A validator for `schema`, a schema of `document` that may refer to its components."""
    return OAS31Validator({**schema, "components": document["components"]})


def refs(value: Any) -> list[str]:
    """Every `$ref` in `value`."""
    if isinstance(value, dict):
        own = [value["$ref"]] if isinstance(value.get("$ref"), str) else []
        return own + [r for v in value.values() for r in refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in refs(v)]
    return []


def resolve(document: dict[str, Any], ref: str) -> Any:
    """The part of `document` that a local `$ref` points at."""
    assert ref.startswith("#/"), ref
    target: Any = document
    for part in ref[2:].split("/"):
        target = target[part]
    return target


@pytest.fixture(name="document")
async def _document(make_client: ClientFactory, settings: Settings) -> dict[str, Any]:
    """The example project's /openapi.json, as served."""
    client = await serve(make_client, settings)
    response = await client.get("/openapi.json")
    assert response.status == 200
    assert response.content_type == "application/json"
    body: dict[str, Any] = await response.json()
    return body


@pytest.fixture(name="custom_document")
def _custom_document(write_steps: WriteSteps) -> dict[str, Any]:
    """The document of a project with path parameters, shared and recursive classes."""
    steps = write_steps({"users_step.py": USERS_STEP, "get_user_step.py": GET_USER_STEP,
                         "other_user_step.py": OTHER_USER_STEP, "ping_step.py": PING_STEP,
                         "inbox_stream.py": INBOX_STREAM}, "openapi_steps")
    return openapi_document(load_project(steps), Settings(
        steps_dir=steps, max_id_length=64, max_body_size=1000))


def test_example_document_is_valid_openapi_31(document: dict[str, Any]) -> None:
    """The served document passes openapi-spec-validator, and every $ref resolves."""
    assert document["openapi"] == "3.1.0"
    validate(document)
    for ref in refs(document):
        resolve(document, ref)


def test_served_document_is_the_projects(document: dict[str, Any], settings: Settings) -> None:
    """What GET /openapi.json serves is `openapi_document` of the loaded project."""
    assert document == openapi_document(load_project(settings.steps_dir), settings)


def test_api_step_is_an_operation(document: dict[str, Any]) -> None:
    """POST /jobs: name, flows, summary, the body schema and every response it can give."""
    operation = document["paths"]["/jobs"]["post"]
    assert operation["operationId"] == "StartJob"
    assert operation["tags"] == ["jobs"]
    assert operation["summary"] == "Start a job; watch its progress item update live"
    assert "parameters" not in operation
    body = operation["requestBody"]
    assert body["required"] is True
    assert list(body["content"]) == ["application/json", "application/x-www-form-urlencoded"]
    schema = body["content"]["application/json"]["schema"]
    assert body["content"]["application/x-www-form-urlencoded"]["schema"] == schema
    assert schema["title"] == "JobRequest"
    assert schema["additionalProperties"] is False
    assert schema["properties"] == {"steps": {"type": "integer", "default": 20},
                                    "delay": {"type": "number", "default": 0.25}}
    responses = operation["responses"]
    assert list(responses) == ["200", "400", "413", "415", "500"]
    ok = responses["200"]["content"]["application/json"]["schema"]
    assert ok["title"] == "JobProgress"
    assert ok["required"] == ["status", "done", "total"]
    assert "additionalProperties" not in ok  # the answer is a stream item: it has an id too
    for status in ("400", "415"):
        assert responses[status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"}
    assert responses["500"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/StepFailure"}
    for status in ("200", "400", "415", "500"):
        assert responses[status]["headers"] == {
            "x-trace-id": {"$ref": "#/components/headers/TraceId"}}
    failure = document["components"]["schemas"]["StepFailure"]
    assert failure["required"] == ["error", "details", "trace_id"]
    assert document["components"]["schemas"]["Error"]["required"] == ["error", "details"]


def test_feeds_are_event_stream_gets(document: dict[str, Any]) -> None:
    """The three feeds: text/event-stream, their parameters, and JSON 400 / 404."""
    item = document["paths"]["/streams/{stream}/{group}/{item}"]["get"]
    assert [(p["name"], p["in"], p["required"]) for p in item["parameters"]] == [
        ("stream", "path", True), ("group", "path", True), ("item", "path", True),
        ("delta", "query", False), ("Last-Event-ID", "header", False)]
    assert item["parameters"][0]["schema"] == {"type": "string", "enum": ["openai", "progress"]}
    assert item["parameters"][1]["schema"]["maxLength"] == 256
    group = document["paths"]["/streams/{stream}/{group}"]["get"]
    assert [p["name"] for p in group["parameters"]] == ["stream", "group", "delta",
                                                        "Last-Event-ID"]
    mux = document["paths"]["/streams"]["get"]
    sub = mux["parameters"][0]
    assert (sub["name"], sub["in"], sub["required"], sub["explode"]) == ("sub", "query", True, True)
    assert sub["schema"]["maxItems"] == 100
    for operation in (item, group, mux):
        [delta] = [p for p in operation["parameters"] if p["name"] == "delta"]
        assert delta["schema"] == {"type": "integer", "enum": [0, 1], "default": 0}
        assert operation["tags"] == ["streams"]
        responses = operation["responses"]
        assert list(responses) == ["200", "400", "404", "429", "503"]  # no stream is guarded
        assert list(responses["200"]["content"]) == ["text/event-stream"]
        for status in ("400", "404", "429", "503"):
            assert responses[status]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Error"}
        assert "Retry-After" in responses["503"]["headers"]


def test_id_pattern_is_check_ids(document: dict[str, Any]) -> None:
    """The documented group id pattern accepts and refuses what the server does."""
    schema = document["paths"]["/streams/{stream}/{group}"]["get"]["parameters"][1]["schema"]
    validator = OAS31Validator(schema)
    for good in ("g", "a b", "é", "x" * 256, "...", ".a"):
        assert validator.is_valid(good), good
    for bad in ("", ".", "..", "a/b", "a\x00", "a\x1f", "a\x7f", "a\n", "x" * 257):
        assert not validator.is_valid(bad), bad


async def test_answers_fit_the_documented_schemas(make_client: ClientFactory, settings: Settings,
                                                  document: dict[str, Any]) -> None:
    """A 200 and a 400 of the example steps validate against their documented schemas."""
    client = await serve(make_client, settings)
    responses = document["paths"]["/jobs"]["post"]["responses"]
    for payload, status in [({"steps": 1, "delay": 0}, 200), ({"steps": "x"}, 400)]:
        response = await client.post("/jobs", json=payload)
        assert response.status == status
        schema = responses[str(status)]["content"]["application/json"]["schema"]
        assert response_validator(document, schema).is_valid(await response.json())


def test_path_and_query_parameters(custom_document: dict[str, Any]) -> None:
    """`{user}` and `{n:\\d+}` become required string path parameters; query_params too."""
    assert "/users/{user}/items/{n}" in custom_document["paths"]
    operation = custom_document["paths"]["/users/{user}/items/{n}"]["put"]
    assert operation["parameters"] == [
        {"name": "user", "in": "path", "required": True, "schema": {"type": "string"}},
        {"name": "n", "in": "path", "required": True,
         "schema": {"type": "string", "pattern": "^(?:\\d+)$"}},
        {"name": "verbose", "in": "query", "required": False, "description": "again",
         "schema": {"type": "string"}},
    ]
    assert operation["summary"] == "Replace a user."
    assert operation["description"] == "Replace a user.\nThe second line says more."
    assert operation["tags"] == ["users"]


def test_class_used_twice_is_a_component(custom_document: dict[str, Any]) -> None:
    """A response class used by several operations is one component; a request body keeps
    refusing extra keys, an answer allows them."""
    schemas = custom_document["components"]["schemas"]
    ref = {"$ref": "#/components/schemas/User"}
    put = custom_document["paths"]["/users/{user}/items/{n}"]["put"]
    get = custom_document["paths"]["/users/{user}"]["get"]
    assert get["responses"]["200"]["content"]["application/json"]["schema"] == ref
    assert put["responses"]["200"]["content"]["application/json"]["schema"] == ref
    assert put["responses"]["400"]["content"]["application/json"]["schema"] == {
        "anyOf": [ref, {"$ref": "#/components/schemas/Error"}]}
    assert schemas["User"] == {"title": "User", "type": "object",
                               "properties": {"name": {"type": "string"}}, "required": ["name"]}
    body = put["requestBody"]["content"]["application/json"]["schema"]
    assert body == {**schemas["User"], "additionalProperties": False}


def test_same_name_different_class(custom_document: dict[str, Any]) -> None:
    """Two classes named User are two components with two names."""
    invite = custom_document["paths"]["/invites"]["post"]["responses"]
    ref = {"$ref": "#/components/schemas/User_2"}
    assert invite["200"]["content"]["application/json"]["schema"] == ref
    assert invite["202"]["content"]["application/json"]["schema"] == ref
    assert custom_document["components"]["schemas"]["User_2"]["properties"] == {
        "email": {"type": "string"}}


def test_recursive_class_moves_to_components(custom_document: dict[str, Any]) -> None:
    """json_schema's `$defs` would point at the document's root: they become components."""
    put = custom_document["paths"]["/users/{user}/items/{n}"]["put"]
    get = custom_document["paths"]["/users/{user}"]["get"]
    node_ref = {"$ref": "#/components/schemas/Node"}
    assert put["responses"]["201"]["content"]["application/json"]["schema"] == node_ref
    assert get["responses"]["202"]["content"]["application/json"]["schema"] == node_ref
    assert sorted(custom_document["components"]["schemas"]) == [
        "Error", "Node", "StepFailure", "User", "User_2"]
    node = custom_document["components"]["schemas"]["Node"]
    assert node["properties"]["children"]["items"] == node_ref
    assert node["description"] == "A tree."
    assert "$defs" not in str(custom_document)
    validate(custom_document)
    for ref in refs(custom_document):
        resolve(custom_document, ref)
    tree = {"name": "a", "children": [{"name": "b", "children": []}], "id": "extra is fine"}
    validator = response_validator(custom_document, node_ref)
    assert validator.is_valid(tree)
    assert not validator.is_valid({"name": "a", "children": [{"children": []}]})


def test_steps_without_schemas(custom_document: dict[str, Any]) -> None:
    """No body schema: a GET documents no body, and a 400 only for an id the handler took
    from the request; a POST an optional JSON body. No response schema: a `default`."""
    ping = custom_document["paths"]["/ping"]["get"]
    assert "requestBody" not in ping
    assert list(ping["responses"]) == ["400", "500", "default"]
    assert ping["responses"]["400"]["description"] == (
        "An id the handler took from the request cannot be one")
    invite = custom_document["paths"]["/invites"]["post"]
    assert invite["requestBody"] == {"required": False,
                                     "content": {"application/json": {"schema": {}}}}
    assert list(invite["responses"]) == ["200", "202", "400", "413", "500"]
    assert ping["summary"] == "Ping"


def test_on_redis_a_step_may_answer_503() -> None:
    """With Redis, every API step documents the 503 it answers while Redis is away."""
    project = load_project(Path(__file__).resolve().parent.parent / "steps")
    embedded = openapi_document(project, Settings())
    on_redis = openapi_document(project, Settings(redis_url="redis://127.0.0.1:6379/0"))
    for path, methods in on_redis["paths"].items():
        for method, operation in methods.items():
            if path.startswith("/streams"):
                continue
            assert operation["responses"]["503"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/StepFailure"}
            assert "503" not in embedded["paths"][path][method]["responses"]


def test_request_body_schema_is_json_schema_of_the_class() -> None:
    """The body schema is exactly what json_schema gives, so it is what the server checks."""
    project = load_project(Path(__file__).resolve().parent.parent / "steps")
    document = openapi_document(project, Settings())
    for step in project.api_steps:
        config = step.config
        assert isinstance(config, ApiRouteConfig)
        assert config.body_schema is not None
        operation = document["paths"][config.path][config.method.lower()]
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        assert schema == json_schema(config.body_schema)


def test_add_openapi_registers_the_route() -> None:
    """add_openapi adds GET /openapi.json to an app."""
    app = web.Application()
    add_openapi(app)
    routes = [(r.method, r.resource.canonical) for r in app.router.routes()
              if r.resource is not None]
    assert ("GET", "/openapi.json") in routes


def test_settings_limit_is_documented() -> None:
    """maxItems of `sub` follows max_subscriptions."""
    steps = Path(__file__).resolve().parent.parent / "steps"
    document = openapi_document(load_project(steps), attrs.evolve(
        Settings(steps_dir=steps), max_subscriptions=7))
    assert document["paths"]["/streams"]["get"]["parameters"][0]["schema"]["maxItems"] == 7


def test_guarded_streams_and_limits(custom_document: dict[str, Any]) -> None:
    """A stream with `can_access` adds 401 and 403 to the feeds; the settings' id length and
    body size are in the document."""
    paths = custom_document["paths"]
    item = paths["/streams/{stream}/{group}/{item}"]["get"]
    assert list(item["responses"]) == ["200", "400", "401", "403", "404", "429", "503"]
    assert item["parameters"][0]["schema"]["enum"] == ["inbox"]
    assert item["parameters"][2]["schema"]["maxLength"] == 64
    invite = paths["/invites"]["post"]["responses"]
    assert invite["413"]["description"].startswith("The body is larger than 1000 bytes")
