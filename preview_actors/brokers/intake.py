"""What a broker's consumers may take for the worker they serve.

Every broker this project builds has an :class:`Intake`, set by the
:class:`~preview_actors.middleware.intake.WorkerIntake` middleware:

- **prefetch limits**: a worker holds at most this many messages of a queue
  (taken, waiting in its memory or running), so one worker never hoards long
  renders while another idles. Dramatiq's own default is twice the worker's
  threads, on every queue;
- **stopping**: once a worker begins to stop, the consumers running on its
  consumer threads take no new message. They keep running — renewing
  leases, sending heartbeats, settling what the worker holds — but whatever
  the worker hands back (a render interrupted by the stop) is left for other
  workers, and so is anything they had prefetched.

Consumers are told apart by the thread that created them: dramatiq's worker
creates each consumer on its own consumer thread, and creates it again on
that thread after a connection error. A consumer created anywhere else (a
test calling ``broker.consume``) is never stopped.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable

__all__ = ["Intake"]


class Intake:
    """Prefetch limits per queue, and the consumer threads of stopping workers. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._prefetch_limits: dict[str, int] = {}
        self._stopping: weakref.WeakSet[threading.Thread] = weakref.WeakSet()

    def limit_prefetch(self, queue_name: str, limit: int) -> None:
        """Let a consumer of ``queue_name`` hold at most ``limit`` messages from now on.

        Raises:
          ValueError: when ``limit`` is not a positive integer.
        """
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ValueError(f"prefetch limit of {queue_name!r} must be a positive integer, got {limit!r}")
        with self._lock:
            self._prefetch_limits[queue_name] = limit

    def prefetch(self, queue_name: str, requested: int) -> int:
        """How many messages a new consumer of ``queue_name`` may hold: ``requested``, capped by the limit."""
        with self._lock:
            limit = self._prefetch_limits.get(queue_name)
        return requested if limit is None else min(requested, limit)

    def stop_taking(self, consumer_threads: Iterable[threading.Thread]) -> None:
        """Consumers running on ``consumer_threads`` take nothing from now on."""
        with self._lock:
            for thread in consumer_threads:
                self._stopping.add(thread)

    def taking(self, thread: threading.Thread) -> bool:
        """Whether a consumer created on ``thread`` may take new messages."""
        with self._lock:
            return thread not in self._stopping
