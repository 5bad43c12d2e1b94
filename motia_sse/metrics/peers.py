"""`start --workers N`: the workers find each other's counts through a shared folder.

Each worker serves its own exposition on a Unix socket named after its pid in the
folder the supervisor made; the worker a scrape reaches asks every other socket there
and adds up the answers (merge.py). A worker that has died leaves its socket behind:
it is removed when found.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

import aiohttp
import attrs
from aiohttp import web

log = logging.getLogger(__name__)

# Seconds a scrape waits for another worker's counts.
PEER_TIMEOUT = 2.0


@attrs.define
class Peers:
    """This worker's socket in the shared folder, and the other workers' counts."""

    folder: Path
    _runner: web.AppRunner | None = None

    @property
    def own(self) -> Path:
        """This worker's socket."""
        return self.folder / f"{os.getpid()}.sock"

    async def listen(self, exposition: Callable[[], bytes]) -> None:
        """Answer the other workers with this worker's counts."""

        async def serve(_: web.Request) -> web.Response:
            return web.Response(body=exposition(), content_type="text/plain")

        app = web.Application()
        app.router.add_get("/metrics", serve)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.UnixSite(self._runner, str(self.own)).start()

    async def close(self) -> None:
        """Stop answering; remove the socket."""
        if self._runner is not None:
            await self._runner.cleanup()
        _remove(self.own)

    async def others(self) -> list[str]:
        """The other workers' expositions; a worker that does not answer is left out."""
        found = await asyncio.gather(*(_ask(path) for path in self._sockets()))
        return [text for text in found if text is not None]

    def _sockets(self) -> list[Path]:
        return [path for path in self.folder.glob("*.sock") if path != self.own]


async def _ask(path: Path) -> str | None:
    connector = aiohttp.UnixConnector(path=str(path))
    timeout = aiohttp.ClientTimeout(total=PEER_TIMEOUT)
    try:
        async with (aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
                    session.get("http://worker/metrics") as response):
            response.raise_for_status()
            return await response.text()
    except aiohttp.ClientConnectorError as exc:
        if _gone(path):
            _remove(path)
        else:
            log.warning("metrics: worker socket %s: %s", path.name, exc)
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("metrics: worker socket %s did not answer: %s", path.name,
                    exc or type(exc).__name__)
    return None


def _gone(path: Path) -> bool:
    """Whether the worker that made the socket `<pid>.sock` has ended."""
    try:
        os.kill(int(path.stem), 0)
    except ProcessLookupError:
        return True
    except (ValueError, PermissionError):
        return False
    return False


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
