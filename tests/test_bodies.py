"""Request bodies by Content-Type, `req.raw_body`, and str or bytes answers, over a real socket."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from motia_sse import Settings
from tests.conftest import ClientFactory, WriteSteps

WEBHOOK_STEP = '''
import hashlib
import hmac
from motia_sse import ApiRequest, ApiResponse, ApiRouteConfig, FlowContext

config = ApiRouteConfig(name="Webhook", path="/webhook", method="POST")
SECRET = b"s3cret"

async def handler(req: ApiRequest[object], ctx: FlowContext) -> ApiResponse:
    expected = "sha256=" + hmac.new(SECRET, req.raw_body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, req.headers.get("X-Signature", "")):
        return ApiResponse(status=401, body={"error": "bad signature"})
    return ApiResponse(body={"body": req.body, "type": type(req.body).__name__,
                             "bytes": len(req.raw_body)})
'''

SIGNUP_STEP = '''
import attrs
from motia_sse import ApiRequest, ApiResponse, ApiRouteConfig, FlowContext

@attrs.frozen
class Signup:
    name: str
    age: int
    tags: list[str] = attrs.Factory(list)
    newsletter: bool = False
    score: float | None = None

config = ApiRouteConfig(name="Signup", path="/signup", method="POST", body_schema=Signup)

async def handler(req: ApiRequest[Signup], ctx: FlowContext) -> ApiResponse:
    return ApiResponse(body=req.body)
'''

NOTE_STEP = '''
from motia_sse import ApiRequest, ApiResponse, ApiRouteConfig, FlowContext

config = ApiRouteConfig(name="Note", path="/note", method="POST", body_schema=str)

async def handler(req: ApiRequest[str], ctx: FlowContext) -> ApiResponse:
    return ApiResponse(body={"note": req.body, "raw": req.raw_body.hex()})
'''

GREETING_STEP = '''
from motia_sse import ApiRouteConfig

config = ApiRouteConfig(name="Greeting", path="/greeting", response_schema={200: str, 201: bytes})

async def handler(req, ctx):
    return {"status": 200, "body": "hi"}
'''

ANSWER_STEP = '''
from motia_sse import ApiRequest, ApiResponse, ApiRouteConfig, FlowContext

config = ApiRouteConfig(name="Answer", path="/answer/{kind}", method="GET")

ANSWERS = {
    "html": ApiResponse(body="<p>hi</p>", headers={"content-type": "text/html"}),
    "text": ApiResponse(body="héllo"),
    "latin1": ApiResponse(body="héllo", headers={"Content-Type": "text/plain; charset=latin-1"}),
    "bytes": ApiResponse(body=b"\\x00\\x01"),
    "png": ApiResponse(body=b"\\x89PNG", headers={"CONTENT-TYPE": "image/png"}),
    "problem": ApiResponse(status=409, body={"title": "taken"},
                           headers={"Content-Type": "application/problem+json"}),
    "json": ApiResponse(body="<p>hi</p>", headers={"content-type": "application/json"}),
    "bad-charset": ApiResponse(body="hi", headers={"content-type": "text/plain; charset=nope"}),
}

async def handler(req: ApiRequest[None], ctx: FlowContext) -> object:
    if req.path_params["kind"] == "dict":
        return {"status": 201, "body": "made", "headers": {"X-Made": "1"}}
    return ANSWERS[req.path_params["kind"]]
'''


@pytest.fixture(name="bodies")
async def _bodies(write_steps: WriteSteps, make_client: ClientFactory) -> TestClient[Any, Any]:
    """The steps above, served as `dev` serves them."""
    steps: Path = write_steps({"webhook_step.py": WEBHOOK_STEP, "signup_step.py": SIGNUP_STEP,
                               "note_step.py": NOTE_STEP, "answer_step.py": ANSWER_STEP,
                               "greeting_step.py": GREETING_STEP})
    return await make_client(Settings(steps_dir=steps, store="memory", dev=True))


def signed(raw: bytes) -> str:
    """The signature a webhook sender puts on `raw`."""
    return "sha256=" + hmac.new(b"s3cret", raw, hashlib.sha256).hexdigest()


async def post(client: TestClient[Any, Any], path: str, data: bytes,
               content_type: str | None, **headers: str) -> tuple[int, Any]:
    """POST `data` as it is, with exactly this Content-Type (none if None)."""
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = await client.post(path, data=data, headers=headers,
                                 skip_auto_headers=["Content-Type"])
    return response.status, await response.json()


@pytest.mark.parametrize(("content_type", "raw", "body", "kind"), [
    # Spacing a re-encoding would not keep: the signature is over the bytes as sent.
    ("application/json", b'{"event":  "push",\n "n": 1}', {"event": "push", "n": 1}, "dict"),
    (None, b'{"event":"push"}', {"event": "push"}, "dict"),
    ("application/vnd.github+json; charset=UTF-8", b'["a"]', ["a"], "list"),
    ("application/x-www-form-urlencoded", b"payload=%7B%7D&x=1&x=2",
     {"payload": "{}", "x": ["1", "2"]}, "dict"),
    ("text/plain", "héllo".encode(), "héllo", "str"),
    ("application/octet-stream", b"\x00\xff\x10", None, "NoneType"),
    ("multipart/form-data; boundary=x", b"--x--", None, "NoneType"),
    # What `curl -d '{...}'` sends: no form encoder leaves a { unescaped.
    ("application/x-www-form-urlencoded", b' {"a": 1}', {"a": 1}, "dict"),
    ("text/plain", b"", None, "NoneType"),
])
async def test_webhook_checks_its_signature_over_raw_body(
    bodies: TestClient[Any, Any], content_type: str | None, raw: bytes, body: Any, kind: str
) -> None:
    """A step without body_schema gets every body's bytes in raw_body, and body parsed
    for the types it knows (JSON when none is given), None for others: no 415."""
    status, answer = await post(bodies, "/webhook", raw, content_type, **{
        "X-Signature": signed(raw)})
    assert status == 200, answer
    assert answer == {"body": body, "type": kind, "bytes": len(raw)}
    status, answer = await post(bodies, "/webhook", raw + b" ", content_type, **{
        "X-Signature": signed(raw)})
    assert (status, answer) == (401, {"error": "bad signature"})


async def test_form_fields_are_converted_by_the_schema(bodies: TestClient[Any, Any]) -> None:
    """A form fits the same body_schema as JSON: ints, floats, booleans converted, a
    repeated key (or a single one) a list where the schema wants a list."""
    form = "application/x-www-form-urlencoded"
    assert await post(bodies, "/signup", b"name=Ann+Lee&age=41&tags=a&tags=b%2Fc"
                      b"&newsletter=on&score=2.5", form) == (
        200, {"name": "Ann Lee", "age": 41, "tags": ["a", "b/c"], "newsletter": True,
              "score": 2.5})
    assert await post(bodies, "/signup", b"name=Bo&age=-3&tags=solo", form) == (
        200, {"name": "Bo", "age": -3, "tags": ["solo"], "newsletter": False, "score": None})
    # The charset the form names decodes its %-escapes.
    assert await post(bodies, "/signup", b"name=J%E9r%F4me&age=7",
                      f"{form}; charset=ISO-8859-1") == (
        200, {"name": "Jérôme", "age": 7, "tags": [], "newsletter": False, "score": None})
    # JSON as curl -d sends it (labelled a form), or as aiohttp sends bytes (octet-stream).
    for content_type in ("application/x-www-form-urlencoded", "application/octet-stream"):
        assert await post(bodies, "/signup", b'{"name": "Cy", "age": 9}', content_type) == (
            200, {"name": "Cy", "age": 9, "tags": [], "newsletter": False, "score": None})
    # JSON to the same step: as strict as ever, "41" is no integer there.
    assert (await post(bodies, "/signup", b'{"name": "Ann", "age": "41"}',
                       "application/json"))[1]["details"] == [
        "expected integer, got string @ $.age"]


@pytest.mark.parametrize(("raw", "details"), [
    (b"name=Ann&age=old", ["expected integer, got 'old' @ $.age"]),
    (b"name=Ann&age=4.5", ["expected integer, got '4.5' @ $.age"]),
    (b"name=Ann&name=Bo&age=1", ["expected one string, got 2 values @ $.name"]),
    (b"name=Ann&age=1&newsletter=maybe&score=nan",
     ["expected true or false, got 'maybe' @ $.newsletter",
      "expected number, got 'nan' @ $.score"]),
    (b"age=1&extra=x", ["required field missing @ $.name", "extra fields found (extra) @ $"]),
    (b"", ["required field missing @ $.name", "required field missing @ $.age"]),
])
async def test_bad_form_is_400_naming_the_field(
    bodies: TestClient[Any, Any], raw: bytes, details: list[str]
) -> None:
    """A form field that does not fit is refused as a JSON field would be."""
    status, answer = await post(bodies, "/signup", raw, "application/x-www-form-urlencoded")
    assert (status, answer["error"]) == (400, "invalid body")
    assert sorted(answer["details"]) == sorted(details)


async def test_text_plain_body_in_its_charset(bodies: TestClient[Any, Any]) -> None:
    """text/plain is decoded in the charset it names (utf-8 if none); a `str` schema
    takes it, or a JSON string."""
    assert await post(bodies, "/note", "Grüße".encode("latin-1"),
                      "text/plain; charset=latin-1") == (
        200, {"note": "Grüße", "raw": "4772fcdf65"})
    assert await post(bodies, "/note", '"Grüße"'.encode(), "application/json") == (
        200, {"note": "Grüße", "raw": '"Grüße"'.encode().hex()})
    status, answer = await post(bodies, "/note", b"\xff", "text/plain")
    assert (status, answer) == (400, {"error": "malformed body", "details": [
        "not utf-8 text: invalid start byte at byte 0"]})


@pytest.mark.parametrize(("path", "content_type", "raw", "error", "detail"), [
    ("/signup", "text/csv", b"a,b", "unsupported content type",
     "Content-Type: expected application/json or application/x-www-form-urlencoded, "
     "got 'text/csv'"),
    ("/signup", "text/plain", b"Ann", "unsupported content type",
     "Content-Type: expected application/json or application/x-www-form-urlencoded, "
     "got 'text/plain'"),
    ("/note", "application/x-www-form-urlencoded", b"a=1", "unsupported content type",
     "Content-Type: expected application/json or text/plain, "
     "got 'application/x-www-form-urlencoded'"),
    ("/webhook", "text/plain; charset=klingon", b"hi", "unsupported charset",
     "Content-Type: charset 'klingon' is not one this server knows; expected utf-8"),
])
async def test_unsupported_content_type_is_415(
    bodies: TestClient[Any, Any], path: str, content_type: str, raw: bytes, error: str,
    detail: str
) -> None:
    """A type the step's schema cannot take is a 415 naming the ones it accepts."""
    status, answer = await post(bodies, path, raw, content_type)
    assert (status, answer) == (415, {"error": error, "details": [detail]})


@pytest.mark.parametrize(("kind", "status", "content_type", "raw"), [
    ("html", 200, "text/html; charset=utf-8", b"<p>hi</p>"),
    ("text", 200, "text/plain; charset=utf-8", "héllo".encode()),
    ("latin1", 200, "text/plain; charset=latin-1", "héllo".encode("latin-1")),
    ("bytes", 200, "application/octet-stream", b"\x00\x01"),
    ("png", 200, "image/png", b"\x89PNG"),
    ("problem", 409, "application/problem+json", b'{"title":"taken"}'),
    # A str body with a JSON type is what the handler says it is: JSON text, as it is.
    ("json", 200, "application/json", b"<p>hi</p>"),
    ("dict", 201, "text/plain; charset=utf-8", b"made"),
])
async def test_str_and_bytes_answers_are_sent_as_they_are(
    bodies: TestClient[Any, Any], kind: str, status: int, content_type: str, raw: bytes
) -> None:
    """No quoting, no base85: the body's bytes, with the handler's Content-Type (in
    whatever case it wrote the name), else text/plain or application/octet-stream."""
    response = await bodies.get(f"/answer/{kind}")
    assert response.status == status
    assert response.headers.getall("Content-Type") == [content_type]
    assert await response.read() == raw
    assert response.headers["x-trace-id"]


async def test_a_charset_python_does_not_know_fails_the_step(
    bodies: TestClient[Any, Any]
) -> None:
    """A str body in an unknown charset is the handler's mistake: a 500 that names it."""
    response = await bodies.get("/answer/bad-charset")
    assert response.status == 500
    answer = await response.json()
    assert answer["details"][0] == "LookupError: unknown encoding: nope"


async def test_openapi_lists_the_content_types(bodies: TestClient[Any, Any]) -> None:
    """/openapi.json: each body schema under the types the step takes, its 415, and str
    or bytes answers as text/plain or application/octet-stream."""
    document = await (await bodies.get("/openapi.json")).json()
    signup = document["paths"]["/signup"]["post"]
    content = signup["requestBody"]["content"]
    assert list(content) == ["application/json", "application/x-www-form-urlencoded"]
    assert content["application/json"] == content["application/x-www-form-urlencoded"]
    assert signup["responses"]["415"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"}
    note = document["paths"]["/note"]["post"]["requestBody"]["content"]
    assert note == {"application/json": {"schema": {"type": "string"}},
                    "text/plain": {"schema": {"type": "string"}}}
    greeting = document["paths"]["/greeting"]["get"]["responses"]
    assert greeting["200"]["content"] == {
        "text/plain; charset=utf-8": {"schema": {"type": "string"}}}
    assert list(greeting["201"]["content"]) == ["application/octet-stream"]
    assert "415" not in document["paths"]["/webhook"]["post"]["responses"]
