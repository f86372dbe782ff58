"""An in-process job store, for the stub broker and tests."""

from __future__ import annotations

import heapq
import threading
import time
from typing import Any

import attrs

from ..errors import QueueFullError
from .base import JobRecord, JobStore, check_lease, check_limit, leaves_unchanged


class MemoryJobStore(JobStore):
    def __init__(self) -> None:
        self._jobs: dict[str, JobRecord] = {}
        #: Lease name → (owner, expiry on the monotonic clock in seconds).
        self._leases: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def create(self, record: JobRecord, *, max_unfinished: int | None = None) -> tuple[JobRecord, bool]:
        with self._lock:
            existing = self._jobs.get(record.job_id)
            if existing is not None:
                return existing, False
            if max_unfinished is not None:
                unfinished = self._count_unfinished()
                if unfinished >= max_unfinished:
                    raise QueueFullError(unfinished, max_unfinished)
            self._jobs[record.job_id] = record
            return record, True

    def get(self, job_id: str) -> JobRecord | None:
        with self._lock:
            return self._jobs.get(job_id)

    def apply_changes(
        self,
        job_id: str,
        changes: dict[str, Any],
        *,
        allow_finished: bool = False,
        count_attempt: bool = False,
        max_attempts: int | None = None,
    ) -> JobRecord | None:
        with self._lock:
            record = self._jobs.get(job_id)
            if record is None or leaves_unchanged(
                record, allow_finished=allow_finished, count_attempt=count_attempt, max_attempts=max_attempts
            ):
                return record
            if count_attempt:
                changes = {**changes, "attempts": record.attempts + 1}
            record = attrs.evolve(record, **changes)
            self._jobs[job_id] = record
            return record

    def count_unfinished(self) -> int:
        with self._lock:
            return self._count_unfinished()

    def _count_unfinished(self) -> int:
        return sum(1 for record in self._jobs.values() if not record.finished)

    def acquire_lease(self, name: str, owner: str, ttl_s: float) -> bool:
        check_lease(name, owner, ttl_s)
        now = time.monotonic()
        with self._lock:
            holder = self._leases.get(name)
            if holder is not None and holder[0] != owner and holder[1] > now:
                return False
            self._leases[name] = (owner, now + ttl_s)
            return True

    def release_lease(self, name: str, owner: str) -> None:
        check_lease(name, owner)
        with self._lock:
            holder = self._leases.get(name)
            if holder is not None and holder[0] == owner:
                del self._leases[name]

    def delete(self, job_id: str) -> None:
        with self._lock:
            self._jobs.pop(job_id, None)

    def ping(self) -> None:
        return None

    def stale_unfinished(self, updated_before: float, *, limit: int) -> list[JobRecord]:
        check_limit(limit)
        with self._lock:
            stale = [r for r in self._jobs.values() if not r.finished and r.updated_at < updated_before]
        return heapq.nsmallest(limit, stale, key=lambda record: record.updated_at)
