"""Where state lives: the embedded default (SQLite or memory, in process) or Redis."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable

import attrs
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from motia_sse.exceptions import MotiaError
from motia_sse.queue.base import EventQueue
from motia_sse.queue.memory import MemoryQueue
from motia_sse.queue.redis_queue import RedisQueue
from motia_sse.queue.sqlite_queue import SqliteQueue
from motia_sse.run.step_settings import StepDefaults
from motia_sse.settings import Settings
from motia_sse.streams.fanout import Fanout, LocalFanout
from motia_sse.streams.hub import Hub
from motia_sse.streams.memory_store import MemoryStore
from motia_sse.streams.redis_fanout import RedisFanout
from motia_sse.streams.redis_store import RedisStore
from motia_sse.streams.sqlite_store import SqliteStore
from motia_sse.streams.store import StreamStore

# Connections one process opens to Redis at most (pub/sub and blocking reads included),
# and how long a command waits for one of them before it fails.
REDIS_CONNECTIONS = 64
REDIS_WAIT = 10.0
# A command that meets a dead connection (one pooled before Redis restarted, say)
# reconnects and runs again, up to this many times, backing off from 50 ms to 0.5 s:
# well under a second in all, so a Redis that is really down still fails fast.
REDIS_RETRIES = 3
# Seconds a readiness check waits for the store (or Redis) to answer.
READY_TIMEOUT = 2.0


def _redis_retry() -> Retry:
    return Retry(ExponentialWithJitterBackoff(cap=0.5, base=0.05), REDIS_RETRIES)


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` says Redis cannot be reached now, rather than that a command is wrong."""
    return isinstance(exc, RedisConnectionError | RedisTimeoutError)


class BackendUnavailable(MotiaError):
    """The configured Redis cannot be reached at start-up."""


@attrs.define
class Backend:
    """The store, fan-out and queue one server uses, and what they hold open."""

    store: StreamStore
    fanout: Fanout
    queue: EventQueue
    redis: Redis | None = None
    redis_url: str | None = None
    redis_prefix: str = "motia"

    async def start(self) -> None:
        """Connect; raise BackendUnavailable with the address if Redis does not answer."""
        if self.redis is None:
            return
        try:
            await self.redis.ping()
            if isinstance(self.fanout, RedisFanout):
                await self.fanout.start()
        except (RedisError, OSError) as exc:
            raise BackendUnavailable(f"cannot reach Redis at {self.redis_url}: {exc}") from exc

    async def ready(self) -> str | None:
        """Why the store (or Redis) does not answer now, or None if it does.

        The reason names no address: load balancers and strangers may read it."""
        name = "Redis" if self.redis is not None else "the store"
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                if self.redis is not None:
                    await self.redis.ping()
                else:  # a read of an item nobody writes
                    await self.store.get("", "", "")
        except TimeoutError:
            return f"{name} did not answer within {READY_TIMEOUT:g}s"
        except (RedisError, OSError, sqlite3.Error) as exc:
            return f"{name} does not answer ({type(exc).__name__})"
        return None

    async def claim_tick(self, step: str, tick: int) -> bool:
        """Whether this process runs cron `step` at `tick`: always, unless on Redis,
        where the first process to claim a tick gets it."""
        if self.redis is None:
            return True
        key = f"{self.redis_prefix}:cron:{step}:{tick}"
        return bool(await self.redis.set(key, b"1", nx=True, ex=24 * 3600))

    async def close(self) -> None:
        """Release connections and files."""
        if isinstance(self.fanout, RedisFanout):
            await self.fanout.stop()
        await self.queue.close()
        await self.store.close()
        if self.redis is not None:
            await self.redis.aclose()


def open_backend(settings: Settings, hub: Hub, event_steps: list[str],
                 on_gap: Callable[[], None]) -> Backend:
    """The backend the settings choose: Redis when `redis_url` is set."""
    policy = StepDefaults.from_settings(settings).policy
    if settings.redis_url:
        # Commands wait for a free connection: a reconnect storm of thousands of feeds
        # reads its snapshots through the pool, instead of failing past its size.
        pool = BlockingConnectionPool.from_url(
            settings.redis_url, max_connections=REDIS_CONNECTIONS, timeout=REDIS_WAIT,
            health_check_interval=10, socket_connect_timeout=5, retry=_redis_retry())
        redis: Redis = Redis.from_pool(pool)
        prefix = settings.redis_prefix
        return Backend(RedisStore(redis, prefix), RedisFanout(redis, hub, prefix, on_gap),
                       RedisQueue(redis, prefix, event_steps, policy,
                                  settings.visibility_timeout),
                       redis, settings.redis_url, prefix)
    if settings.store == "memory":
        return Backend(MemoryStore(), LocalFanout(hub), MemoryQueue(policy))
    return Backend(SqliteStore.open(settings.data_dir / "streams.sqlite3"), LocalFanout(hub),
                   SqliteQueue.open(settings.data_dir / "queue.sqlite3", policy))
