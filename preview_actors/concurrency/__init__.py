"""Render slots: at most ``PREVIEW_MAX_CONCURRENCY`` renders at once across all workers.

A render takes a slot before its renderer starts and gives it back when the
renderer ends. A job that finds no free slot waits: its message goes back to
the queue with a short delay and no retry is counted (see
:class:`~preview_actors.middleware.retries.Retries`).

Two backends, both of which free the slot of a worker that dies:

- :class:`~.redis.RedisRenderSlots` — leases in a Redis sorted set, renewed
  while the render runs, for deployments spanning machines. (Dramatiq's
  ``ConcurrentRateLimiter`` cannot renew its key, so a crashed worker's slot
  would stay taken for a TTL longer than the longest render.)
- :class:`~.files.FileRenderSlots` — ``flock`` on lock files in DATA_DIR, for
  one machine (SQLite broker); the kernel drops the lock of a dead process.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator
from pathlib import Path

from dramatiq import RateLimitExceeded

from ..errors import PreviewError


class RenderSlotBusy(RateLimitExceeded, PreviewError):
    """No render slot is free now; the message should wait and come back.

    A ``RateLimitExceeded``, so dramatiq's worker logs it at debug level only.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)  # type: ignore[no-untyped-call]  # dramatiq's DramatiqError.__init__ is not annotated


class RenderSlots(abc.ABC):
    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a render slot limit must be at least 1")
        self.limit = limit

    @abc.abstractmethod
    def try_acquire(self) -> Slot | None:
        """Take a free slot, or return None when all are taken."""

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Hold a slot for the block; raise :class:`RenderSlotBusy` when none is free."""
        slot = self.try_acquire()
        if slot is None:
            raise RenderSlotBusy(f"all {self.limit} render slots are taken")
        try:
            yield
        finally:
            slot.release()


class Slot(abc.ABC):
    @abc.abstractmethod
    def release(self) -> None: ...


def open_render_slots(limit: int, *, redis_client: object | None, lock_dir: Path) -> RenderSlots:
    """Redis leases when a Redis client is at hand (broker or store), else lock files."""
    if redis_client is not None:
        from .redis import RedisRenderSlots

        return RedisRenderSlots(redis_client, limit)  # type: ignore[arg-type]  # a redis.Redis, typed object: redis is optional
    from .files import FileRenderSlots

    return FileRenderSlots(lock_dir, limit)
