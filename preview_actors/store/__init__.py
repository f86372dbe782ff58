"""Job-status stores: one small interface, a backend per module.

``open_store(url)`` picks the backend by URL scheme and imports its driver only
then, so a SQLite deployment never imports redis.
"""

from __future__ import annotations

from .base import RENDERED_STATES, TERMINAL_STATES, AttemptsExhausted, JobRecord, JobState, JobStore


def open_store(url: str) -> JobStore:
    """Open the job-status store named by ``url`` (redis://, sqlite:///, memory://)."""
    scheme = url.partition("://")[0]
    if scheme in ("redis", "rediss"):
        from ..extras import require_driver

        require_driver("PREVIEW_STORE_URL", url)  # MissingExtraError without the 'redis' extra
        from .redis import RedisJobStore

        return RedisJobStore.from_url(url)
    if scheme == "sqlite":
        from ..brokers.sqlite import path_from_url
        from .sqlite import SQLiteJobStore

        return SQLiteJobStore(path_from_url(url))
    if scheme == "memory":
        from .memory import MemoryJobStore

        return MemoryJobStore()
    raise ValueError(f"no job store for URL scheme {scheme!r}")


__all__ = ["RENDERED_STATES", "TERMINAL_STATES", "AttemptsExhausted", "JobRecord", "JobState", "JobStore", "open_store"]
