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
from typing import Any, Iterable

import redis
from dramatiq import Message, MessageProxy
from dramatiq.brokers.redis import MAINTENANCE_COMMAND_BLACKLIST, _RedisConsumer
from dramatiq.brokers.redis import RedisBroker as DramatiqRedisBroker
from dramatiq.common import compute_backoff
from dramatiq.errors import ConnectionClosed
from dramatiq.worker import ConsumerThread

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


class RedisBroker(DramatiqRedisBroker):
    def __init__(
        self,
        *,
        heartbeat_timeout: int = HEARTBEAT_TIMEOUT_MS,
        maintenance_interval_ms: int = MAINTENANCE_INTERVAL_MS,
        **kwargs: Any,
    ) -> None:
        super().__init__(heartbeat_timeout=heartbeat_timeout, **kwargs)
        self.maintenance_interval_ms = maintenance_interval_ms
        self._maintained = threading.local()

    @property
    def consumer_class(self) -> type["_Consumer"]:
        return _Consumer

    def enqueue(self, message: Message, *, delay: int | None = None) -> Message:
        """Enqueue, raising ``ConnectionClosed`` when Redis is away.

        A worker's consumer thread moving a due delayed message keeps trying
        instead, until Redis is back or the worker stops: it holds that message
        only in memory, and its thread would die of the error.
        """
        thread = threading.current_thread()
        moving_delayed = isinstance(thread, ConsumerThread)
        attempts = 0
        while True:
            try:
                return super().enqueue(message, delay=delay)
            except REDIS_CONNECTION_ERRORS as error:
                if not (moving_delayed and thread.running):
                    raise ConnectionClosed(error) from None
                attempts, backoff_ms = compute_backoff(attempts, max_backoff=RECONNECT_MAX_BACKOFF_MS)
                if attempts == 1:
                    logger.warning("Redis is unreachable (%s); holding delayed message %s until it is back.", error, message.message_id)
                time.sleep(backoff_ms / 1000)

    def queue_keys(self, queue_name: str) -> tuple[str, str]:
        """The list of ``queue_name``'s message ids and the hash of their data, as dramatiq lays them out."""
        list_key = f"{self.namespace}:{queue_name}"
        return list_key, f"{list_key}.msgs"

    def stamp(self, message: Message) -> Message:
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
    def __init__(self, broker: RedisBroker, queue_name: str, prefetch: int, timeout: int) -> None:
        super().__init__(broker, queue_name, prefetch, timeout)
        self._beat_at = 0.0
        #: Redis ids of messages handed to the worker and not yet acked or nacked.
        self._handed_out: set[str] = set()
        self._failures = 0
        self._reconcile = False

    def __next__(self) -> MessageProxy | None:
        try:
            if self._reconcile:
                self._give_back_unheld()
            self._beat_while_busy()
            message = super().__next__()
        except (ConnectionClosed, *REDIS_CONNECTION_ERRORS) as error:
            return self._wait_for_redis(error)
        if self._failures:
            logger.info("Redis is back; consuming %r again.", self.queue_name)
            self._failures = 0
        if message is not None:
            self._handed_out.add(message.options["redis_message_id"])
        return message

    def ack(self, message: MessageProxy) -> None:
        super().ack(message)
        self._handed_out.discard(message.options["redis_message_id"])

    def nack(self, message: MessageProxy) -> None:
        super().nack(message)
        self._handed_out.discard(message.options["redis_message_id"])

    def requeue(self, messages: Iterable[MessageProxy]) -> None:
        messages = list(messages)
        try:
            super().requeue(messages)
        except REDIS_CONNECTION_ERRORS as error:
            raise ConnectionClosed(error) from None
        for message in messages:
            self._handed_out.discard(message.options["redis_message_id"])

    def _beat_while_busy(self) -> None:
        now = time.monotonic()
        if now - self._beat_at >= HEARTBEAT_INTERVAL_MS / 1000:
            self._beat_at = now
            if self.outstanding_message_count >= self.prefetch:
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
        return None

    def _give_back_unheld(self) -> None:
        """Requeue ids in this worker's acks set that it holds nowhere — fetched, but the reply was lost.

        The set is read before the held ids, so an id acked in between is not
        held any more; requeue skips it, as it is no longer in the set.
        """
        acks_key = f"{self.broker.namespace}:__acks__.{self.broker.broker_id}.{self.queue_name}"
        in_acks_set = {member.decode() for member in self.broker.client.smembers(acks_key)}
        held = set(self._handed_out)
        held.update(Message.decode(data).options["redis_message_id"] for data in self.message_cache if data is not None)
        unheld = sorted(in_acks_set - held)
        if unheld:
            logger.warning("Requeueing %d messages of %r fetched while Redis went away.", len(unheld), self.queue_name)
            self.broker.do_requeue(self.queue_name, *unheld)
        self._reconcile = False
