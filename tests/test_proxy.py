"""Behind a proxy: forwarded client addresses and the root path from trusted peers only,
the listen backlog, and a clear line for bad flag values."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import pytest
from aiohttp.test_utils import TestClient

from motia_sse import Settings, create_app
from motia_sse.cli import parse_settings
from motia_sse.http.proxy import TrustedProxies
from tests.conftest import EXAMPLE_STEPS, ClientFactory, ServerProcess

LIMIT = 2


def limited(settings: Settings, trusted: str | None) -> Settings:
    """`settings` with a per-client limit of LIMIT, trusting the `trusted` network."""
    networks = () if trusted is None else (ip_network(trusted),)
    return attrs.evolve(settings, max_feeds_per_client=LIMIT, forwarded_allow_ips=networks)


@pytest.fixture(name="held")
async def _held() -> AsyncIterator[list[aiohttp.ClientResponse]]:
    """Feeds a test keeps open; closed after it."""
    responses: list[aiohttp.ClientResponse] = []
    yield responses
    for response in responses:
        response.close()


async def feed(client: TestClient[Any, Any], held: list[aiohttp.ClientResponse],
               path: str = "/streams/progress/g/1", **headers: str) -> aiohttp.ClientResponse:
    """GET a feed with `headers`; kept open until the test ends."""
    response = await client.get(path, headers=headers)
    held.append(response)
    return response


async def refused_address(response: aiohttp.ClientResponse) -> str:
    """The address a 429 says holds too many feeds."""
    assert response.status == 429, await response.text()
    body = await response.json()
    return str(body["details"][0].split()[0])


@pytest.mark.parametrize("trusted", [None, "10.0.0.0/8"])
async def test_forwarding_headers_from_an_untrusted_peer_change_nothing(
    make_client: ClientFactory, settings: Settings, held: list[aiohttp.ClientResponse],
    trusted: str | None
) -> None:
    """From 127.0.0.1, not a trusted proxy, spoofed X-Forwarded-For, Forwarded and
    X-Forwarded-Prefix are ignored: every feed counts against 127.0.0.1."""
    client = await make_client(limited(settings, trusted))
    for n in range(LIMIT):
        assert (await feed(client, held, **{"X-Forwarded-For": f"203.0.113.{n}"})).status == 200
    spoofs = [{"X-Forwarded-For": "203.0.113.9"}, {"Forwarded": "for=198.51.100.1"},
              {"X-Forwarded-For": "203.0.113.9", "Forwarded": "for=198.51.100.1"}]
    for spoof in spoofs:
        assert await refused_address(await feed(client, held, **spoof)) == "127.0.0.1"
    document = await (await client.get("/openapi.json",
                                       headers={"X-Forwarded-Prefix": "/evil"})).json()
    assert "servers" not in document


def test_without_the_flag_there_is_no_middleware(settings: Settings) -> None:
    """The hot path pays nothing for proxies unless --forwarded-allow-ips is given."""

    def proxy_middlewares(app: Any) -> list[Any]:
        return [m for m in app.middlewares if isinstance(getattr(m, "__self__", None),
                                                         TrustedProxies)]

    assert proxy_middlewares(create_app(settings)) == []
    assert len(proxy_middlewares(create_app(limited(settings, "127.0.0.1")))) == 1


async def test_a_trusted_proxy_names_the_client(
    make_client: ClientFactory, settings: Settings, held: list[aiohttp.ClientResponse]
) -> None:
    """From a trusted peer, the per-client limit counts the forwarded address: the
    nearest one in X-Forwarded-For that is not a trusted proxy, so an address a client
    put in front of the chain cannot dodge the limit."""
    client = await make_client(limited(settings, "127.0.0.0/8"))
    one = {"X-Forwarded-For": "203.0.113.1"}
    assert (await feed(client, held, **one)).status == 200
    assert (await feed(client, held, "/__motia/logs/feed", **one)).status == 200
    # Leftmost a spoof, then the address the trusted proxy saw, then a trusted hop.
    chains = ["198.51.100.66, 203.0.113.1", "203.0.113.1, 127.0.0.2", "203.0.113.1"]
    for chain in chains:
        assert await refused_address(
            await feed(client, held, **{"X-Forwarded-For": chain})) == "203.0.113.1"
    for n in range(2, 2 + 3):  # other clients behind the same proxy are let in
        assert (await feed(client, held, **{"X-Forwarded-For": f"203.0.113.{n}"})).status == 200


async def test_forwarded_header_when_there_is_no_x_forwarded_for(
    make_client: ClientFactory, settings: Settings, held: list[aiohttp.ClientResponse]
) -> None:
    """RFC 7239 `Forwarded` names the client too: its nearest `for=` not a trusted
    proxy, an IPv6 node in brackets with its port, or the proxy's "unknown"."""
    client = await make_client(limited(settings, "127.0.0.1"))
    cases = {
        "198.51.100.7": 'for=198.51.100.7;proto=https, for=127.0.0.1',
        "2001:db8::1": 'for="[2001:db8::1]:4711"',
        "unknown": "for=unknown",
    }
    for address, header in cases.items():
        for _ in range(LIMIT):
            assert (await feed(client, held, Forwarded=header)).status == 200
        assert await refused_address(await feed(client, held, Forwarded=header)) == address


async def test_the_limit_still_holds_for_the_proxy_itself(
    make_client: ClientFactory, settings: Settings, held: list[aiohttp.ClientResponse]
) -> None:
    """A request from the trusted proxy with no forwarding header is the proxy's own."""
    client = await make_client(limited(settings, "127.0.0.1"))
    for _ in range(LIMIT):
        assert (await feed(client, held)).status == 200
    assert await refused_address(await feed(client, held)) == "127.0.0.1"


async def test_a_malformed_x_forwarded_for_is_a_json_400(
    make_client: ClientFactory, settings: Settings
) -> None:
    """A trusted proxy passing on an address that is none: 400, as JSON like every refusal."""
    client = await make_client(limited(settings, "127.0.0.1"))
    response = await client.get("/__motia/steps", headers={"X-Forwarded-For": "not-an-ip"})
    assert response.status == 400
    assert (await response.json())["error"] == "Invalid X-Forwarded-For header"


async def test_openapi_servers_under_the_root_path(
    make_client: ClientFactory, settings: Settings
) -> None:
    """/openapi.json's `servers` holds --root-path, or a trusted proxy's X-Forwarded-Prefix."""
    plain = await make_client(settings)
    assert "servers" not in await (await plain.get("/openapi.json")).json()
    rooted = await make_client(attrs.evolve(limited(settings, "127.0.0.1"), root_path="/motia"))

    async def servers(**headers: str) -> Any:
        document = await (await rooted.get("/openapi.json", headers=headers)).json()
        return document.get("servers")

    assert await servers() == [{"url": "/motia"}]
    assert await servers(**{"X-Forwarded-Prefix": "/api/v1/"}) == [{"url": "/api/v1"}]
    assert await servers(**{"X-Forwarded-Prefix": "/"}) is None
    assert await servers(**{"X-Forwarded-Prefix": "//evil.example"}) == [{"url": "/motia"}]


def test_flags_and_environment() -> None:
    """--forwarded-allow-ips takes addresses and networks (or *), --root-path a path,
    --backlog a number; each has a MOTIA_* variable."""
    defaults = parse_settings(["start"], {})
    assert (defaults.forwarded_allow_ips, defaults.root_path, defaults.backlog) == ((), "", 2048)
    settings = parse_settings(["start", "--forwarded-allow-ips", "10.0.0.5, 172.16.0.0/12,::1",
                               "--root-path", "/motia", "--backlog", "512"], {})
    assert settings.forwarded_allow_ips == (ip_network("10.0.0.5"), ip_network("172.16.0.0/12"),
                                            ip_network("::1"))
    assert (settings.root_path, settings.backlog) == ("/motia", 512)
    env = {"MOTIA_FORWARDED_ALLOW_IPS": "*", "MOTIA_ROOT_PATH": "/a/b", "MOTIA_BACKLOG": "64"}
    settings = parse_settings(["dev"], env)
    assert settings.forwarded_allow_ips == (ip_network("0.0.0.0/0"), ip_network("::/0"))
    assert (settings.root_path, settings.backlog) == ("/a/b", 64)


@pytest.mark.parametrize(("args", "env", "says"), [
    (["--forwarded-allow-ips", "10.0.0.300"], {},
     "argument --forwarded-allow-ips: '10.0.0.300' does not appear to be an IPv4 or IPv6 "
     "network; expected addresses or networks"),
    (["--forwarded-allow-ips", "10.0.0.1/8"], {},
     "argument --forwarded-allow-ips: 10.0.0.1/8 has host bits set"),
    ([], {"MOTIA_FORWARDED_ALLOW_IPS": "nginx"}, "argument --forwarded-allow-ips: 'nginx'"),
    (["--root-path", "motia"], {}, "argument --root-path: expected a path like /motia"),
    (["--root-path", "/motia/"], {}, "argument --root-path: expected a path like /motia"),
    ([], {"MOTIA_ROOT_PATH": "/"}, "argument --root-path: expected a path like /motia"),
    (["--backlog", "many"], {}, "argument --backlog: invalid int value: 'many'"),
])
def test_bad_values_are_one_clear_line(tmp_path: Path, args: list[str], env: dict[str, str],
                                       says: str) -> None:
    """A bad proxy flag or variable stops `start` at once with argparse's line, no traceback."""
    done = subprocess.run(
        [sys.executable, "-m", "motia_sse", "start", "--steps", str(EXAMPLE_STEPS), *args],
        cwd=tmp_path, env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True,
        timeout=60, check=False)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("motia-sse start: error: ")
    assert says in last, last


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)")
@pytest.mark.parametrize("backlog", [None, "77"])
def test_the_listen_backlog(server_process: Any, backlog: str | None) -> None:
    """`start` listens with --backlog (2048 by default; the kernel caps it at somaxconn)."""
    args = ["--steps", str(EXAMPLE_STEPS), "--store", "memory"]
    server: ServerProcess = server_process(*args, *(["--backlog", backlog] if backlog else []))
    server.start()  # returns once the port accepts connections: it listens
    somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
    listening = subprocess.run(["ss", "-Hltn", f"sport = :{server.port}"], capture_output=True,
                               text=True, timeout=10, check=True).stdout.split()
    # State, Recv-Q, Send-Q (a listening socket's backlog), local address, peer.
    assert int(listening[2]) == (int(backlog) if backlog else min(2048, somaxconn))
