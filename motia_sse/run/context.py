"""What a handler gets as `ctx`: its trace, a bound logger, emit, and the streams."""

from __future__ import annotations

import os
from typing import Any

import attrs

from motia_sse.converter import unstructure
from motia_sse.exceptions import UndeclaredEmitError, UnknownStreamError
from motia_sse.logs.step_logger import StepLogger
from motia_sse.queue.base import Delivery, EventQueue
from motia_sse.run.config import topics
from motia_sse.run.loader import LoadedStep, Project
from motia_sse.run.state import State
from motia_sse.streams.stream import Stream

_random_hex: list[str] = []


def new_trace_id() -> str:
    """32 random hex digits, like a UUID4's, from the OS's generator.

    Trace ids often name a stream group, so they must not be guessable; one getrandom
    call per request showed in profiles, so they are drawn 128 at a time."""
    if not _random_hex:
        pool = os.urandom(16 * 128).hex()
        _random_hex.extend(pool[i:i + 32] for i in range(0, len(pool), 32))
    return _random_hex.pop()


@attrs.frozen
class Streams:
    """`ctx.streams.<name>`: one attribute per stream the project defines."""

    _streams: dict[str, Stream[Any]]

    def __getattr__(self, name: str) -> Stream[Any]:
        try:
            return self._streams[name]
        except KeyError:
            raise UnknownStreamError(name, sorted(self._streams)) from None

    def __getitem__(self, name: str) -> Stream[Any]:
        return self.__getattr__(name)

    def __contains__(self, name: str) -> bool:
        return name in self._streams

    def names(self) -> list[str]:
        """The defined stream names."""
        return sorted(self._streams)


@attrs.frozen
class Emitter:
    """Routes an emitted event to every step subscribed to its topic."""

    _project: Project
    _queue: EventQueue

    async def emit(self, step: LoadedStep, trace_id: str, topic: str, data: Any,
                   message_group_id: str | None = None) -> None:
        """Queue one delivery per subscriber; the emitting step must declare the topic.

        With `message_group_id`, each subscriber gets the group's events one at a time,
        in the order they were emitted (the queue keeps the order)."""
        declared = topics(step.config.emits)  # not virtual_emits: those are never routed
        if topic not in declared:
            raise UndeclaredEmitError(step.name, topic, declared)
        await self.deliver(trace_id, topic, data, message_group_id)

    async def deliver(self, trace_id: str, topic: str, data: Any,
                      message_group_id: str | None = None) -> list[str]:
        """Queue one delivery per step subscribed to `topic`, whoever sends it (a step's
        emit, the workbench's Emit); the names of the steps it reached."""
        payload = unstructure(data)
        reached = self._project.subscribers(topic)
        for subscriber in reached:
            await self._queue.put(Delivery(subscriber.name, topic, payload, trace_id,
                                           group=message_group_id))
        return [s.name for s in reached]


@attrs.define
class FlowContext:
    """The second argument of every handler."""

    trace_id: str
    streams: Streams
    state: State
    _step: LoadedStep
    _emitter: Emitter
    # Made on first use: most handlers never log, and one is built per call.
    _logger: StepLogger | None = attrs.field(default=None, init=False, repr=False)

    @property
    def logger(self) -> StepLogger:
        """The standard logger, with this step's name and trace id on each record."""
        if self._logger is None:
            self._logger = StepLogger(self._step.name, self.trace_id)
        return self._logger

    async def emit(self, topic: str, data: Any, *, message_group_id: str | None = None
                   ) -> None:
        """Send `data` to the steps subscribed to `topic`, carrying this trace id.

        Events emitted with the same `message_group_id` are handled one at a time, in
        emit order, by each subscribing step (a failing one holds the later ones back
        until it succeeds or is dead-lettered); other groups, and events without one,
        run in parallel."""
        if message_group_id is not None and (
                not isinstance(message_group_id, str) or not message_group_id):
            raise TypeError(f"message_group_id must be a non-empty string or None, "
                            f"not {message_group_id!r}")
        await self._emitter.emit(self._step, self.trace_id, topic, data, message_group_id)


@attrs.frozen
class ContextFactory:
    """Builds each handler call's FlowContext from the app's shared parts."""

    streams: Streams
    state: State
    emitter: Emitter

    def __call__(self, step: LoadedStep, trace_id: str) -> FlowContext:
        return FlowContext(trace_id, self.streams, self.state, step, self.emitter)
