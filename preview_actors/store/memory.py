"""An in-process job store, for the stub broker and tests."""

from __future__ import annotations

import threading
from typing import Any

import attrs

from ..errors import QueueFullError
from .base import JobRecord, JobStore


class MemoryJobStore(JobStore):
    def __init__(self) -> None:
        self._jobs: dict[str, JobRecord] = {}
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
        self, job_id: str, changes: dict[str, Any], *, allow_finished: bool = False, count_attempt: bool = False
    ) -> JobRecord | None:
        with self._lock:
            record = self._jobs.get(job_id)
            if record is None or (record.finished and not allow_finished):
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

    def delete(self, job_id: str) -> None:
        with self._lock:
            self._jobs.pop(job_id, None)

    def ping(self) -> None:
        return None
