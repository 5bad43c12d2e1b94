"""Behind a reverse proxy: the client's address and the root path, from trusted peers only.

`--forwarded-allow-ips` names the proxies (addresses or networks). A request whose peer
is one of them takes its client address from `X-Forwarded-For` (aiohttp-remotes'
XForwardedFiltered: the nearest address that is not a trusted proxy itself) or, without
that header, from `Forwarded` (as aiohttp parses it); per-client limits and logs then see
that address. The proxy's `X-Forwarded-Prefix` stands for `--root-path`. From any other
peer these headers mean nothing. Without the flag there is no middleware at all, so the
hot path pays nothing for it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import attrs
from aiohttp import hdrs, web

from motia_sse.settings import Settings

if TYPE_CHECKING:
    from aiohttp_remotes import XForwardedFiltered

IPNetwork = IPv4Network | IPv6Network
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# The root path the client sees: X-Forwarded-Prefix from a trusted proxy; unset, --root-path.
ROOT_PATH = web.RequestKey("root_path", str)
ANY_PEER = (ip_network("0.0.0.0/0"), ip_network("::/0"))
_ROOT_PATH = re.compile(r"(?:/[^/?#\s]+)+")


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    """`--forwarded-allow-ips`: addresses or networks, comma-separated; `*` is any peer."""
    networks: list[IPNetwork] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        if part == "*":
            networks += ANY_PEER
            continue
        try:
            networks.append(ip_network(part))
        except ValueError as exc:
            raise ValueError(f"{exc}; expected addresses or networks, comma-separated, "
                             "like 10.0.0.5,172.16.0.0/12") from None
    return tuple(networks)


def parse_root_path(text: str) -> str:
    """`--root-path`: empty, or a path with a leading slash and no trailing one."""
    if text and not _ROOT_PATH.fullmatch(text):
        raise ValueError(f"expected a path like /motia (a leading slash, no trailing one), "
                         f"got {text!r}")
    return text


def trust_proxies(app: web.Application, settings: Settings) -> None:
    """Believe forwarding headers from `settings.forwarded_allow_ips`, if any."""
    if settings.forwarded_allow_ips:
        app.middlewares.append(TrustedProxies(settings.forwarded_allow_ips).middleware)


def root_path(request: web.Request, settings: Settings) -> str:
    """The prefix a proxy serves the app under: its X-Forwarded-Prefix, or --root-path."""
    root: str = request.get(ROOT_PATH, settings.root_path)
    return root


@attrs.define
class TrustedProxies:
    """The middleware that takes the client's address from trusted proxies' headers."""

    _networks: tuple[IPNetwork, ...]
    _x_forwarded: XForwardedFiltered = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        # Imported only here: a server without --forwarded-allow-ips never loads it.
        from aiohttp_remotes import XForwardedFiltered

        self._x_forwarded = XForwardedFiltered(self._networks)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """From a trusted peer: the forwarded client address and prefix; else as it came."""
        if not _trusted(self._networks, request.remote):
            return await handler(request)
        prefix = _forwarded_prefix(request.headers.get("X-Forwarded-Prefix"))
        if prefix is not None:
            request[ROOT_PATH] = prefix  # before the clone, which copies it
        if hdrs.X_FORWARDED_FOR in request.headers:
            # A malformed header from the proxy is a 400 (HTTPBadRequest).
            return await self._x_forwarded.middleware(request, handler)
        client = self._forwarded_client(request)
        return await handler(request if client is None else request.clone(remote=client))

    def _forwarded_client(self, request: web.Request) -> str | None:
        """The nearest `for=` of `Forwarded` that is not a trusted proxy (or the first)."""
        nodes = [node for elem in request.forwarded if (node := elem.get("for"))]
        for node in reversed(nodes):
            address = _address(node)
            if not _trusted(self._networks, address):
                return address or node  # "unknown", "_hidden": the proxy's word for it
        return (_address(nodes[0]) or nodes[0]) if nodes else None


@functools.lru_cache(maxsize=4096)
def _trusted(networks: tuple[IPNetwork, ...], peer: str | None) -> bool:
    try:
        address = ip_address(peer or "")
    except ValueError:  # a Unix socket, or a name that is no address
        return False
    if address.version == 6 and address.ipv4_mapped:  # a dual-stack socket's IPv4 peer
        address = address.ipv4_mapped
    return any(address in network for network in networks)


def _address(node: str) -> str | None:
    """The address of a `Forwarded` node: `192.0.2.1`, `192.0.2.1:80`, `[2001:db8::1]:80`."""
    try:
        host = urlsplit("//" + node).hostname
        return str(ip_address(host or ""))
    except ValueError:  # "unknown", an obfuscated "_name", a bad port
        return None


def _forwarded_prefix(value: str | None) -> str | None:
    """X-Forwarded-Prefix as a root path ("/motia/" is "/motia", "/" is none); None if
    absent or not a path."""
    if value is None:
        return None
    value = value.strip().rstrip("/")
    return value if not value or _ROOT_PATH.fullmatch(value) else None
