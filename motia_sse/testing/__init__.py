"""Run a motia-sse server process, a redis-server or a fake OpenAI, for tests and benchmarks."""

from motia_sse.testing.fake_openai import FakeOpenAI
from motia_sse.testing.processes import (
    RedisServer,
    ServerProcess,
    free_port,
    start_argv,
)

__all__ = ["FakeOpenAI", "RedisServer", "ServerProcess", "free_port", "start_argv"]
