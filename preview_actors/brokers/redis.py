"""Dramatiq's Redis broker, made to recover a dead worker's messages promptly.

Out of the box a Redis worker sends its heartbeat only when it fetches, which
a busy worker (all prefetch slots taken by long renders) stops doing, and a
dead worker's messages come back only when a random maintenance roll hits
(0.1% of commands) — minutes on a quiet queue. Here each consumer sends a
heartbeat at least every :data:`HEARTBEAT_INTERVAL_MS` even while busy, and
runs maintenance on its queue at least every :data:`MAINTENANCE_INTERVAL_MS`,
so a dead worker's messages are back within about
``heartbeat_timeout + MAINTENANCE_INTERVAL_MS``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from dramatiq.brokers.redis import MAINTENANCE_COMMAND_BLACKLIST, _RedisConsumer
from dramatiq.brokers.redis import RedisBroker as DramatiqRedisBroker

#: A worker silent this long is dead and its messages go to others, milliseconds.
HEARTBEAT_TIMEOUT_MS = 15_000
#: Each consumer's heartbeat period, also while all its prefetch slots are busy, milliseconds.
HEARTBEAT_INTERVAL_MS = 3_000
#: Each consumer runs queue maintenance (requeueing dead workers' messages) this often, milliseconds.
MAINTENANCE_INTERVAL_MS = 5_000


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

    def __next__(self) -> Any:
        now = time.monotonic()
        if now - self._beat_at >= HEARTBEAT_INTERVAL_MS / 1000:
            self._beat_at = now
            if self.outstanding_message_count >= self.prefetch:
                # A fetch of nothing: the heartbeat (and maybe maintenance) without taking work.
                self.broker.do_fetch(self.queue_name, 0)
        return super().__next__()
