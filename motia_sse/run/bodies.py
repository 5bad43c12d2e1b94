"""Request bodies: read once, kept raw, and parsed by Content-Type into `req.body`.

JSON (and any `+json` type), `application/x-www-form-urlencoded` and `text/plain` are
parsed; a body with no Content-Type is JSON, as it always was here, and so is a "form"
that starts with `{` or `[` (what `curl -d` sends). A step with a `body_schema` also
reads `application/octet-stream` as JSON and refuses other types with a 415; a step
without one gets `body=None` for them and reads `req.raw_body` itself (a webhook's
signed bytes, an upload).
"""

from __future__ import annotations

import logging
import types
import typing
from collections import abc
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import attrs
import orjson
from aiohttp import hdrs, web

from motia_sse.converter import structure, structure_form
from motia_sse.exceptions import Refused, ValidationError

log = logging.getLogger(__name__)

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
TEXT = "text/plain"
_BYTES = "application/octet-stream"
# Charsets orjson reads as they are; any other is decoded to text first.
_UTF8 = (None, "utf-8", "utf8")
_SEQUENCES = (list, tuple, set, frozenset, abc.Sequence, abc.MutableSequence, abc.Set,
              abc.MutableSet)


class UnreadableBody(ValidationError):
    """A body that cannot even be read, let alone parsed."""


def accepted_types(schema: type[Any] | None) -> tuple[str, ...]:
    """The content types a step with `body_schema=schema` takes: text for a `str`, form
    fields for an attrs class or a dict, JSON for any schema; all three without one."""
    if schema is None:
        return (JSON, FORM, TEXT)
    if schema is str:
        return (JSON, TEXT)
    if attrs.has(schema) or schema is dict or typing.get_origin(schema) is dict:
        return (JSON, FORM)
    return (JSON,)


async def read_body(request: web.Request, schema: type[Any] | None) -> tuple[Any, bytes]:
    """(`req.body`, `req.raw_body`) of `request` for a step with `body_schema=schema`;
    ValidationError (400) if it does not parse or fit, Refused (415) for a type it
    does not take."""
    raw = await _read(request)
    content_type = request.headers.get(hdrs.CONTENT_TYPE)
    if content_type is None or content_type == JSON:  # the common case, header unparsed
        return _json(raw, schema, None), raw
    mime, charset = request.content_type, (request.charset or "").lower() or None
    kind = _read_as(mime, raw, schema)
    parse = _PARSERS.get(kind)
    if schema is None and (parse is None or not raw):
        return None, raw  # the step reads raw_body, if it wants the body at all
    accepted = accepted_types(schema)
    if parse is None or kind not in accepted:
        raise Refused(415, "unsupported content type", [
            f"Content-Type: expected {' or '.join(accepted)}, got {mime!r}"])
    return parse(raw, schema, charset), raw


def _read_as(mime: str, raw: bytes, schema: type[Any] | None) -> str:
    """The type a body labelled `mime` is parsed as."""
    if mime.endswith("+json"):  # application/merge-patch+json, application/vnd.api+json
        return JSON
    if mime == FORM and raw.lstrip()[:1] in (b"{", b"["):
        # `curl -d '{...}'` labels JSON a form; no form encoder leaves { or [ unescaped.
        return JSON
    if mime == _BYTES and schema is not None:
        # What clients (aiohttp's among them) label bytes they were given without a
        # type, and what HTTP says a body without one may be taken as: JSON, as before.
        return JSON
    return mime


async def _read(request: web.Request) -> bytes:
    try:
        return await request.read()
    except web.RequestPayloadError as exc:  # e.g. a Content-Encoding the body is not in
        # The rest cannot be read either; say so, or aiohttp's lingering read after the
        # response trips over the same error and logs it as unhandled.
        request.content.feed_eof()
        raise UnreadableBody("unreadable body", [" ".join(str(exc).split())]) from None
    except ConnectionError:
        # The client left mid-body (aiohttp fails the read with the connection's loss):
        # nothing went wrong here, and the refusal is never sent, quietly.
        log.info("client %s hung up during the body of %s %s",
                 request.remote, request.method, request.path)
        raise UnreadableBody("unreadable body", ["the client hung up"]) from None


def _json(raw: bytes, schema: type[Any] | None, charset: str | None) -> Any:
    if not raw.strip():
        if schema is None:
            return None
        raise ValidationError("invalid body", ["expected a JSON object, got an empty body @ $"])
    try:
        data = orjson.loads(raw if charset in _UTF8 else _text(raw, charset))
    except orjson.JSONDecodeError as exc:
        raise ValidationError("malformed JSON body", [str(exc)]) from None
    return data if schema is None else structure(data, schema, "body")


def _form(raw: bytes, schema: type[Any] | None, charset: str | None) -> Any:
    try:
        pairs = parse_qsl(_text(raw, charset), keep_blank_values=True,
                          encoding=charset or "utf-8", errors="strict")
    except UnicodeDecodeError as exc:  # a %-escape that is not text in the charset
        raise ValidationError("malformed form body", [
            f"a %-escaped value is not {charset or 'utf-8'}: {exc.reason}"]) from None
    fields: dict[str, list[str]] = {}
    for key, value in pairs:
        fields.setdefault(key, []).append(value)
    lists = frozenset[str]() if schema is None else _list_fields(schema)
    # One value is a string, a repeated key a list, as in req.query_params; a field
    # whose type is a list gets a list even from one value.
    form = {key: values if key in lists or len(values) > 1 else values[0]
            for key, values in fields.items()}
    return form if schema is None else structure_form(form, schema, "body")


def _plain_text(raw: bytes, schema: type[Any] | None, charset: str | None) -> Any:
    text = _text(raw, charset)
    return text if schema is None else structure(text, schema, "body")


def _text(raw: bytes, charset: str | None) -> str:
    try:
        return raw.decode(charset or "utf-8")
    except LookupError:
        raise Refused(415, "unsupported charset", [
            f"Content-Type: charset {charset!r} is not one this server knows; "
            "expected utf-8"]) from None
    except UnicodeDecodeError as exc:
        raise ValidationError("malformed body", [
            f"not {charset or 'utf-8'} text: {exc.reason} at byte {exc.start}"]) from None


def _list_fields(schema: type[Any]) -> frozenset[str]:
    """The fields of an attrs `schema` that take a list (or set, or tuple)."""
    if not attrs.has(schema):
        return frozenset()
    try:
        hints = typing.get_type_hints(schema)
    except Exception:  # an unresolvable annotation: cattrs will say so when structuring
        return frozenset()
    return frozenset(field.name for field in attrs.fields(schema)
                     if _is_sequence(hints.get(field.name)))


def _is_sequence(kind: Any) -> bool:
    origin = typing.get_origin(kind)
    if origin is typing.Union or origin is types.UnionType:  # list[int] | None
        return any(_is_sequence(arg) for arg in typing.get_args(kind))
    return (origin or kind) in _SEQUENCES


_PARSERS: dict[str, Callable[[bytes, type[Any] | None, str | None], Any]] = {
    JSON: _json, FORM: _form, TEXT: _plain_text}
