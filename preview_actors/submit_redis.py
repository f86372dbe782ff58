"""One round trip per submission when the broker and the job store share a Redis.

In general a submission records the job, enqueues its first message and
marks the job enqueued: three calls, with a moment in which a record exists
without its message. With the Redis broker and the Redis job store on the
same database (the default for ``redis://``), one Lua script
(``store/create.lua``) does all three, atomically — from a thread with the
store's client, or from an event loop with an asyncio client of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import attrs
import redis
import redis.asyncio
from dramatiq import Message

from .brokers.redis import RedisBroker
from .errors import BrokerUnavailableError, JobConflictError
from .runtime import Runtime
from .store import JobRecord
from .store.redis import RedisJobStore, client_options, translate_errors

#: (stored record, created, unfinished jobs after this one — None when not known).
Outcome = tuple[JobRecord, bool, "int | None"]


class OneTripSubmitter:
    def __init__(self, broker: RedisBroker, store: RedisJobStore, url: str) -> None:
        self.broker = broker
        self.store = store
        self.url = url
        self._source = store.script_source("create")
        self._script = store.client.register_script(self._source)
        self._loop_clients: dict[asyncio.AbstractEventLoop, tuple[Any, AsyncIterator[None]]] = {}

    @classmethod
    def for_runtime(cls, runtime: Runtime) -> OneTripSubmitter | None:
        """One for ``runtime`` when its broker and store are on the same Redis database, else None."""
        broker, store = runtime.broker, runtime.store
        if not (isinstance(broker, RedisBroker) and isinstance(store, RedisJobStore)):
            return None
        if _address(broker.client) != _address(store.client):
            return None
        return cls(broker, store, runtime.settings.store_url)

    @translate_errors
    def submit(self, record: JobRecord, *, max_unfinished: int | None) -> Outcome:
        """Record and enqueue ``record``'s job; raises QueueFullError, JobConflictError, BrokerUnavailableError."""
        record, message, keys, args = self._call(record, max_unfinished)
        return self._outcome(self._script(keys=keys, args=args), record, message, max_unfinished)

    async def submit_async(self, record: JobRecord, *, max_unfinished: int | None) -> Outcome:
        """:meth:`submit` on the running event loop, without a thread."""
        record, message, keys, args = self._call(record, max_unfinished)
        try:
            script = await self._async_script()
            answer = await script(keys=keys, args=args)
        except (redis.ConnectionError, redis.TimeoutError) as error:
            raise BrokerUnavailableError(f"job store (redis) unreachable: {error}") from None
        return self._outcome(answer, record, message, max_unfinished)

    def _call(self, record: JobRecord, max_unfinished: int | None) -> tuple[JobRecord, Message[Any], list[str], list[Any]]:
        from .submit import pipeline_for

        if not record.enqueued:  # as it will be stored: the script enqueues it in the same step
            record = attrs.evolve(record, enqueued=True)
        message = self.broker.stamp(pipeline_for(record, self.broker).messages[0])
        queue_ids, queue_data = self.broker.queue_keys(message.queue_name)
        keys, args = self.store.create_call(
            record, max_unfinished, (queue_ids, queue_data, message.options["redis_message_id"], message.encode())
        )
        return record, message, keys, args

    def _outcome(self, answer: list[Any], record: JobRecord, message: Message[Any], max_unfinished: int | None) -> Outcome:
        stored, created, unfinished = self.store.create_outcome(answer, record, max_unfinished)
        if unfinished is None:  # it existed: enqueued already, or with other content
            if stored.content_sha256 != record.content_sha256:
                raise JobConflictError(record.job_id)
        else:
            self.broker.emit_after("enqueue", message, None)
        return stored, created, unfinished

    async def _async_script(self) -> Any:
        """The script on an asyncio client of the running loop's own (connections belong to one loop).

        The client is closed when the loop shuts down (``asyncio.run`` and
        anyio finalize the loop's async generators, :func:`_close_at_shutdown`).
        """
        loop = asyncio.get_running_loop()
        found = self._loop_clients.get(loop)
        if found is None:
            for stale in [other for other in self._loop_clients if other.is_closed()]:
                del self._loop_clients[stale]
            client = redis.asyncio.Redis.from_url(self.url, **client_options(for_asyncio=True))
            closer = _close_at_shutdown(client)
            await closer.__anext__()  # now the loop knows it, and finalizes it when it shuts down
            found = self._loop_clients[loop] = (client.register_script(self._source), closer)
        return found[0]


async def _close_at_shutdown(client: redis.asyncio.Redis) -> AsyncIterator[None]:
    try:
        yield
    finally:
        await client.aclose()


def _address(client: Any) -> tuple[object, ...]:
    kwargs = client.connection_pool.connection_kwargs
    return (kwargs.get("host"), kwargs.get("port"), kwargs.get("path"), kwargs.get("db", 0))
