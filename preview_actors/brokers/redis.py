"""Dramatiq's Redis broker, made to recover dead workers' messages promptly and
to ride out a Redis restart without losing any.

Prompt recovery: out of the box a Redis worker sends its heartbeat only when it
fetches, which a busy worker (all prefetch slots taken by long renders) stops
doing, and a dead worker's messages come back only when a random maintenance
roll hits (0.1% of commands) — minutes on a quiet queue. Here each consumer
sends a heartbeat at least every :data:`HEARTBEAT_INTERVAL_MS` even while
busy, and runs maintenance on its queue at least every
:data:`MAINTENANCE_INTERVAL_MS`, so a dead worker's messages are back within
about ``heartbeat_timeout + MAINTENANCE_INTERVAL_MS``.

Deliveries: dramatiq gives every enqueue its own ``redis_message_id`` and
settles by it, so an ack never touches a copy handed back under the same
message id. Here the consumer also counts what it holds by that id (dramatiq
counts by message id, so holding a delivery and its handed-back copy counted
as one, and the first ack freed the copy's prefetch slot too).

Stopping: once the worker a consumer serves begins to stop (see
:mod:`.intake`), the consumer fetches nothing more and hands out nothing
from its prefetch cache, but keeps sending heartbeats, so what the worker
still holds stays its own; on close it requeues its cache at once instead of
leaving it for maintenance once its heartbeats stop.

Restarts: a fetched message sits in this worker's acks set in Redis until it
is acknowledged, and maintenance only gives it back once the worker stops
beating. So a message this process holds in memory must never be dropped
while the process lives, or it is stuck until the worker restarts. Dramatiq
drops them in three places when Redis goes away, all closed here:

- the consumer raised ``ConnectionClosed`` and its thread replaced it, losing
  its prefetched messages and its delay queue — here the consumer keeps them
  and waits for Redis;
- moving a due delayed message back to its queue raised the raw driver error,
  which killed the delay queue's thread — here that move waits for Redis;
- a fetch that Redis carried out but whose reply was lost moved messages into
  the acks set that nobody holds — here, once Redis answers again, the
  consumer gives back every id in its acks set that it does not hold.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterable
from typing import Any

import redis
from dramatiq import Message, MessageProxy
from dramatiq.broker import Consumer
from dramatiq.brokers.redis import MAINTENANCE_COMMAND_BLACKLIST, _RedisConsumer
from dramatiq.brokers.redis import RedisBroker as DramatiqRedisBroker
from dramatiq.common import compute_backoff
from dramatiq.errors import ConnectionClosed
from dramatiq.worker import ConsumerThread

from .intake import Intake

logger = logging.getLogger(__name__)

#: A worker silent this long is dead and its messages go to others, milliseconds.
HEARTBEAT_TIMEOUT_MS = 15_000
#: Each consumer's heartbeat period, also while all its prefetch slots are busy, milliseconds.
HEARTBEAT_INTERVAL_MS = 3_000
#: Each consumer runs queue maintenance (requeueing dead workers' messages) this often, milliseconds.
MAINTENANCE_INTERVAL_MS = 5_000
#: Longest wait between attempts to reach Redis again, milliseconds.
RECONNECT_MAX_BACKOFF_MS = 2_000

#: What redis-py raises when the server is away (``TimeoutError`` is not a ``ConnectionError``).
REDIS_CONNECTION_ERRORS = (redis.ConnectionError, redis.TimeoutError)


#: How long a consumer of a stopping worker waits between two looks at nothing, milliseconds.
STOPPED_POLL_MS = 100


class RedisBroker(DramatiqRedisBroker):
    """Dramatiq's Redis broker with prompt recovery, outage tolerance and an :class:`Intake`.

    Parameters:
      heartbeat_timeout: a worker silent this long is dead, milliseconds.
      maintenance_interval_ms: each consumer runs maintenance at least this often.
      **kwargs: dramatiq's ``RedisBroker`` parameters (``url``, ``middleware``…).
    """

    def __init__(
        self,
        *,
        heartbeat_timeout: int = HEARTBEAT_TIMEOUT_MS,
        maintenance_interval_ms: int = MAINTENANCE_INTERVAL_MS,
        **kwargs: Any,
    ) -> None:
        super().__init__(heartbeat_timeout=heartbeat_timeout, **kwargs)  # type: ignore[no-untyped-call]  # dramatiq's, not annotated
        self.maintenance_interval_ms = maintenance_interval_ms
        #: Prefetch limits, and which consumers stopped taking (their worker is stopping).
        self.intake = Intake()
        self._maintained = threading.local()

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> Consumer:
        """A consumer of ``queue_name``; ``prefetch`` is capped by :attr:`intake`'s limit for the queue."""
        return super().consume(queue_name, self.intake.prefetch(queue_name, prefetch), timeout)

    @property
    def consumer_class(self) -> type[_Consumer]:
        return _Consumer

    def enqueue(self, message: Message[Any], *, delay: int | None = None) -> Message[Any]:
        """Enqueue, raising ``ConnectionClosed`` when Redis is away.

        A worker's consumer thread moving a due delayed message keeps trying
        instead, until Redis is back or the worker stops: it holds that message
        only in memory, and its thread would die of the error.
        """
        thread = threading.current_thread()
        consumer_thread = thread if isinstance(thread, ConsumerThread) else None  # moving a due delayed message
        attempts = 0
        while True:
            try:
                return super().enqueue(message, delay=delay)
            except REDIS_CONNECTION_ERRORS as error:
                if consumer_thread is None or not consumer_thread.running:
                    raise ConnectionClosed(error) from None
                attempts, backoff_ms = compute_backoff(attempts, max_backoff=RECONNECT_MAX_BACKOFF_MS)
                if attempts == 1:
                    logger.warning(
                        "Redis is unreachable (%s); holding delayed message %s until it is back.", error, message.message_id
                    )
                time.sleep(backoff_ms / 1000)

    def queue_keys(self, queue_name: str) -> tuple[str, str]:
        """The list of ``queue_name``'s message ids and the hash of their data, as dramatiq lays them out."""
        list_key = f"{self.namespace}:{queue_name}"
        return list_key, f"{list_key}.msgs"

    def stamp(self, message: Message[Any]) -> Message[Any]:
        """What ``enqueue`` does before it writes: a Redis id of its own, and the ``before_enqueue`` hooks.

        For code that writes the message itself (``submit_preview_async``);
        it calls ``emit_after("enqueue", …)`` once the message is in Redis.
        """
        message = message.copy(options={"redis_message_id": str(uuid.uuid4())})
        self.emit_before("enqueue", message, None)
        return message

    def _should_do_maintenance(self, command: str) -> int:
        """Besides dramatiq's random roll, run maintenance when this thread's queue is due.

        Each consumer thread serves one queue, so timing per thread is timing per queue.
        """
        if command in MAINTENANCE_COMMAND_BLACKLIST:
            return 0
        now = time.monotonic()
        if now - getattr(self._maintained, "at", 0.0) >= self.maintenance_interval_ms / 1000:
            self._maintained.at = now
            return 1
        return super()._should_do_maintenance(command)


class _Consumer(_RedisConsumer):
    broker: RedisBroker

    def __init__(self, broker: RedisBroker, queue_name: str, prefetch: int, timeout: int) -> None:
        super().__init__(broker, queue_name, prefetch, timeout)  # type: ignore[no-untyped-call]  # dramatiq's, not annotated
        self._thread = threading.current_thread()  # a worker's consumer thread: see Intake
        self._beat_at = 0.0
        #: Redis ids of messages handed to the worker and not yet acked or nacked.
        self._handed_out: set[str] = set()
        self._failures = 0
        self._reconcile = False

    @property
    def outstanding_message_count(self) -> int:
        """Messages held: handed out and not settled, or cached — counted by delivery, not by message id."""
        return len(self._handed_out) + len(self.message_cache)

    def __next__(self) -> MessageProxy | None:
        try:
            if self._reconcile:
                self._give_back_unheld()
            if not self._taking():
                self._beat(force=True)  # what the stopping worker still holds stays its own
                time.sleep(min(self.timeout, STOPPED_POLL_MS) / 1000)
                return None
            self._beat(force=False)
            message: MessageProxy | None = super().__next__()  # type: ignore[no-untyped-call]  # dramatiq's, not annotated
        except (ConnectionClosed, *REDIS_CONNECTION_ERRORS) as error:
            self._wait_for_redis(error)
            return None
        if self._failures:
            logger.info("Redis is back; consuming %r again.", self.queue_name)
            self._failures = 0
        if message is None:
            return None
        if not self._taking():  # fetched while the worker began to stop: keep it for close
            self.message_cache.insert(0, message.encode())
            return None
        self._handed_out.add(message.options["redis_message_id"])
        return message

    def close(self) -> None:
        """Requeue what was fetched and never handed out, at once.

        Otherwise it waits in this worker's acks set until maintenance finds
        the worker's heartbeats stopped.
        """
        cached = [Message.decode(data).options["redis_message_id"] for data in self.message_cache if data is not None]
        self.message_cache = []
        if not cached:
            return
        try:
            self.broker.do_requeue(self.queue_name, *cached)
        except REDIS_CONNECTION_ERRORS as error:
            logger.warning(
                "Could not requeue %d messages of %r (they return once this worker's heartbeats stop): %s",
                len(cached), self.queue_name, error,
            )  # fmt: skip

    def ack(self, message: MessageProxy) -> None:
        super().ack(message)  # type: ignore[no-untyped-call]  # dramatiq's, not annotated
        self._handed_out.discard(message.options["redis_message_id"])

    def nack(self, message: MessageProxy) -> None:
        super().nack(message)  # type: ignore[no-untyped-call]  # dramatiq's, not annotated
        self._handed_out.discard(message.options["redis_message_id"])

    def requeue(self, messages: Iterable[MessageProxy]) -> None:
        messages = list(messages)
        try:
            super().requeue(messages)  # type: ignore[no-untyped-call]  # dramatiq's, not annotated
        except REDIS_CONNECTION_ERRORS as error:
            raise ConnectionClosed(error) from None
        for message in messages:
            self._handed_out.discard(message.options["redis_message_id"])

    def _taking(self) -> bool:
        return self.broker.intake.taking(self._thread)

    def _beat(self, *, force: bool) -> None:
        """Send a heartbeat when one is due and this consumer will not fetch (all slots busy, or ``force``)."""
        now = time.monotonic()
        if now - self._beat_at >= HEARTBEAT_INTERVAL_MS / 1000:
            self._beat_at = now
            if force or self.outstanding_message_count >= self.prefetch:
                # A fetch of nothing: the heartbeat (and maybe maintenance) without taking work.
                self.broker.do_fetch(self.queue_name, 0)

    def _wait_for_redis(self, error: BaseException) -> None:
        """Keep every message held and wait; the consumer thread calls again."""
        self._reconcile = True
        self._failures, backoff_ms = compute_backoff(self._failures, max_backoff=min(self.timeout, RECONNECT_MAX_BACKOFF_MS))
        if self._failures == 1:
            logger.warning(
                "Redis is unreachable (%s); consumer of %r keeps its %d messages and retries.",
                error, self.queue_name, self.outstanding_message_count,
            )
        time.sleep(backoff_ms / 1000)

    def _give_back_unheld(self) -> None:
        """Requeue ids in this worker's acks set that it holds nowhere — fetched, but the reply was lost.

        The set is read before the held ids, so an id acked in between is not
        held any more; requeue skips it, as it is no longer in the set.
        """
        acks_key = f"{self.broker.namespace}:__acks__.{self.broker.broker_id}.{self.queue_name}"
        members = self.broker.client.smembers(acks_key)
        in_acks_set = {member.decode() if isinstance(member, bytes) else str(member) for member in members}
        held = set(self._handed_out)
        held.update(Message.decode(data).options["redis_message_id"] for data in self.message_cache if data is not None)
        unheld = sorted(in_acks_set - held)
        if unheld:
            logger.warning("Requeueing %d messages of %r fetched while Redis went away.", len(unheld), self.queue_name)
            self.broker.do_requeue(self.queue_name, *unheld)
        self._reconcile = False
