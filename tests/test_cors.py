"""Pages on other origins (`--cors-origin`): preflights, API answers and feeds, over sockets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import pytest
from aiohttp.test_utils import TestClient

from motia_sse import Settings, create_app
from motia_sse.cli import parse_settings
from motia_sse.http.cors import parse_origins
from tests.conftest import EXAMPLE_STEPS, ClientFactory

PAGES = "http://pages.test:5173"
OTHER = "https://elsewhere.test"
JOB = {"steps": 1, "delay": 0}


def preflight(origin: str, method: str = "POST",
              headers: str = "content-type,authorization") -> dict[str, str]:
    """What a browser sends before a cross-origin request it may not make unasked."""
    return {"Origin": origin, "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers}


def cors_headers(response: aiohttp.ClientResponse) -> dict[str, str]:
    """The response's Access-Control-* headers, names in lower case."""
    return {name.lower(): value for name, value in response.headers.items()
            if name.lower().startswith("access-control-")}


async def feed_headers(client: TestClient[Any, Any], path: str,
                       origin: str) -> aiohttp.ClientResponse:
    """Open a feed from `origin`, keep its headers, hang up."""
    async with client.get(path, headers={"Origin": origin}) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/event-stream"
        return response


@pytest.fixture(name="cors_settings")
def _cors_settings(settings: Settings) -> Settings:
    """The example steps, letting pages on PAGES in."""
    return attrs.evolve(settings, cors_origins=(PAGES,))


@pytest.fixture(name="cors_client")
async def _cors_client(make_client: ClientFactory,
                       cors_settings: Settings) -> TestClient[Any, Any]:
    """The example steps on a real socket, letting pages on PAGES in."""
    return await make_client(cors_settings)


async def test_without_the_flag_nothing_changes(client: TestClient[Any, Any]) -> None:
    """No origins: a preflight is a 405 as before, answers and feeds carry no CORS header."""
    answer = await client.options("/jobs", headers=preflight(PAGES))
    assert answer.status == 405
    assert answer.headers["Allow"] == "POST"
    assert cors_headers(answer) == {}
    posted = await client.post("/jobs", json=JOB, headers={"Origin": PAGES})
    assert posted.status == 200
    assert cors_headers(posted) == {}
    assert "Vary" not in posted.headers
    feed = await feed_headers(client, "/streams/progress/g/x", PAGES)
    assert cors_headers(feed) == {}


async def test_preflight_answers_no_content_with_what_is_allowed(
    cors_client: TestClient[Any, Any]
) -> None:
    """A listed origin's preflight: 204 naming the methods, the headers and the origin."""
    answer = await cors_client.options("/jobs", headers=preflight(PAGES))
    assert answer.status == 204
    assert await answer.read() == b""
    found = cors_headers(answer)
    assert found["access-control-allow-origin"] == PAGES
    assert {"GET", "POST", "PUT", "DELETE"} <= set(found["access-control-allow-methods"]
                                                    .split(", "))
    assert found["access-control-allow-headers"] == "Content-Type, Authorization, Last-Event-ID"
    assert int(found["access-control-max-age"]) > 0
    assert "access-control-allow-credentials" not in found
    assert answer.headers["Vary"] == "Origin"
    # A feed's preflight (a client sending Last-Event-ID itself) is answered the same way.
    feed = await cors_client.options("/streams", headers=preflight(PAGES, "GET", "last-event-id"))
    assert feed.status == 204
    assert cors_headers(feed)["access-control-allow-origin"] == PAGES


async def test_answers_and_feeds_name_the_origin_and_expose_the_trace_id(
    cors_client: TestClient[Any, Any]
) -> None:
    """An API answer and every kind of feed carry Allow-Origin; x-trace-id is readable."""
    posted = await cors_client.post("/jobs", json=JOB, headers={"Origin": PAGES})
    assert posted.status == 200
    found = cors_headers(posted)
    assert found["access-control-allow-origin"] == PAGES
    assert "x-trace-id" in found["access-control-expose-headers"].split(",")
    assert "Origin" in posted.headers.getall("Vary")
    for path in ("/streams/progress/g/x", "/streams/progress/g", "/streams?sub=progress/g"):
        feed = await feed_headers(cors_client, path, PAGES)
        assert cors_headers(feed)["access-control-allow-origin"] == PAGES, path
    # A refusal is readable too, so that the page can show why.
    refused = await cors_client.get("/streams/nope/g/x", headers={"Origin": PAGES})
    assert refused.status == 404
    assert cors_headers(refused)["access-control-allow-origin"] == PAGES
    # A page elsewhere imports the client library from the server.
    library = await cors_client.get("/static/motia-stream.js", headers={"Origin": PAGES})
    assert library.status == 200
    assert cors_headers(library)["access-control-allow-origin"] == PAGES


async def test_an_origin_not_listed_gets_no_allow_header(
    cors_client: TestClient[Any, Any]
) -> None:
    """Another origin's preflight is refused; its requests are answered without CORS headers."""
    answer = await cors_client.options("/jobs", headers=preflight(OTHER))
    assert answer.status == 403
    assert cors_headers(answer) == {}
    posted = await cors_client.post("/jobs", json=JOB, headers={"Origin": OTHER})
    assert posted.status == 200  # the server answers; the browser keeps it from the page
    assert cors_headers(posted) == {}
    feed = await feed_headers(cors_client, "/streams/progress/g/x", OTHER)
    assert cors_headers(feed) == {}
    # Nor may a listed origin send a header that is not allowed.
    odd = await cors_client.options("/jobs", headers=preflight(PAGES, headers="x-odd"))
    assert odd.status == 403
    assert cors_headers(odd) == {}


async def test_credentials_and_any_origin(make_client: ClientFactory, settings: Settings) -> None:
    """`--cors-credentials` adds Allow-Credentials; `*` lets any origin in, naming it."""
    client = await make_client(attrs.evolve(settings, cors_origins=(PAGES,),
                                            cors_credentials=True))
    answer = await client.options("/jobs", headers=preflight(PAGES))
    assert cors_headers(answer)["access-control-allow-credentials"] == "true"
    posted = await client.post("/jobs", json=JOB, headers={"Origin": PAGES})
    assert cors_headers(posted)["access-control-allow-credentials"] == "true"
    feed = await feed_headers(client, "/streams/progress/g/x", PAGES)
    assert cors_headers(feed)["access-control-allow-credentials"] == "true"

    anyone = await make_client(attrs.evolve(settings, cors_origins=("*",)))
    posted = await anyone.post("/jobs", json=JOB, headers={"Origin": OTHER})
    assert cors_headers(posted)["access-control-allow-origin"] == OTHER
    assert "access-control-allow-credentials" not in cors_headers(posted)


async def test_workbench_stays_same_origin(make_client: ClientFactory, settings: Settings
                                           ) -> None:
    """The workbench's introspection is for its own page: no CORS header, listed origin or not."""
    client = await make_client(attrs.evolve(settings, dev=True, cors_origins=("*",)))
    steps = await client.get("/__motia/steps", headers={"Origin": PAGES})
    assert steps.status == 200
    assert cors_headers(steps) == {}


async def test_dev_reloadable_routes_answer_preflights(
    make_client: ClientFactory, cors_settings: Settings
) -> None:
    """`dev` serves the API steps behind one swappable route: CORS covers it too."""
    dev = attrs.evolve(cors_settings, dev=True)
    client = await make_client(dev, create_app(dev, reloadable=True))
    answer = await client.options("/jobs", headers=preflight(PAGES))
    assert answer.status == 204
    assert cors_headers(answer)["access-control-allow-origin"] == PAGES
    posted = await client.post("/jobs", json=JOB, headers={"Origin": PAGES})
    assert posted.status == 200
    assert cors_headers(posted)["access-control-allow-origin"] == PAGES
    feed = await feed_headers(client, "/streams/progress/g/x", PAGES)
    assert cors_headers(feed)["access-control-allow-origin"] == PAGES
    # An OPTIONS without an Origin is no preflight: refused.
    plain = await client.options("/jobs")
    assert plain.status == 403
    assert cors_headers(plain) == {}


async def test_dev_reloadable_routes_without_the_flag(make_client: ClientFactory,
                                                      settings: Settings) -> None:
    """`dev` without origins: OPTIONS is the 405 it was, no CORS header."""
    dev = attrs.evolve(settings, dev=True)
    client = await make_client(dev, create_app(dev, reloadable=True))
    answer = await client.options("/jobs", headers=preflight(PAGES))
    assert answer.status == 405
    assert cors_headers(answer) == {}


def test_origins_from_flags_or_the_environment() -> None:
    """Repeatable, or comma-separated in MOTIA_CORS_ORIGIN; flags replace the environment's."""
    flags = ["start", "--cors-origin", PAGES, "--cors-origin", "HTTPS://App.Example.com:443"]
    assert parse_settings(flags, {}).cors_origins == (PAGES, "https://app.example.com")
    env = {"MOTIA_CORS_ORIGIN": f"{PAGES}, {OTHER}", "MOTIA_CORS_CREDENTIALS": "1"}
    from_env = parse_settings(["start"], env)
    assert (from_env.cors_origins, from_env.cors_credentials) == ((PAGES, OTHER), True)
    assert parse_settings(["start", "--cors-origin", OTHER], env).cors_origins == (OTHER,)
    assert parse_settings(["start"], {"MOTIA_CORS_ORIGIN": ""}).cors_origins == ()
    assert parse_settings(["dev", "--cors-origin", "*"], {}).cors_origins == ("*",)
    assert parse_origins("http://[::1]:8080,capacitor://localhost") == (
        "http://[::1]:8080", "capacitor://localhost")


@pytest.mark.parametrize("origin", ["pages.test", "https://pages.test/", "https://pages.test/app",
                                    "https://user@pages.test", "https://pages.test:99999",
                                    "https://pages.test?x=1", "null"])
def test_a_bad_origin_is_refused(origin: str) -> None:
    """Anything but scheme://host[:port] is refused, saying what an origin looks like."""
    with pytest.raises(ValueError, match="expected scheme://host"):
        parse_origins(origin)


@pytest.mark.parametrize(("flags", "says"), [
    (["--cors-origin", "https://pages.test/"], "--cors-origin: 'https://pages.test/' is not"),
    (["--cors-origin", "*", "--cors-credentials"], "'*' cannot go with --cors-credentials"),
    (["--cors-credentials"], "--cors-credentials needs --cors-origin"),
])
def test_bad_cors_flags_are_one_line_at_start(tmp_path: Path, flags: list[str],
                                              says: str) -> None:
    """A bad origin, or credentials for any origin, stops `start` with one line: no traceback."""
    done = subprocess.run(
        [sys.executable, "-m", "motia_sse", "start", "--steps", str(EXAMPLE_STEPS), *flags],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    [line] = [x for x in done.stderr.splitlines() if x.startswith("motia-sse")]
    assert says in line


def test_settings_made_in_code_are_checked(settings: Settings) -> None:
    """create_app refuses what the command line refuses."""
    with pytest.raises(ValueError, match="cannot go with --cors-credentials"):
        create_app(attrs.evolve(settings, cors_origins=("*",), cors_credentials=True))
    with pytest.raises(ValueError, match="not an origin"):
        create_app(attrs.evolve(settings, cors_origins=("https://pages.test/",)))
