"""Job statuses in a SQLite file (WAL), shared by every process on one machine."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import attrs

from ..errors import BrokerUnavailableError, QueueFullError
from .base import TERMINAL_STATES, JobRecord, JobStore, check_lease, check_limit, encode_field, leaves_unchanged

_COLUMNS = [field.name for field in attrs.fields(JobRecord)]
#: What a transaction returns.
T = TypeVar("T")

_TERMINAL = tuple(state.value for state in TERMINAL_STATES)
_NOT_FINISHED = f"state NOT IN ({', '.join('?' * len(_TERMINAL))})"

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS preview_jobs (
    {', '.join(f'{name} TEXT NOT NULL' if name == 'job_id' else f'{name} TEXT' for name in _COLUMNS)},
    PRIMARY KEY (job_id)
);
CREATE INDEX IF NOT EXISTS preview_jobs_state ON preview_jobs (state);
CREATE TABLE IF NOT EXISTS preview_leases (
    name TEXT NOT NULL PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at REAL NOT NULL  -- seconds since the epoch (processes share no monotonic clock)
);
"""


class SQLiteJobStore(JobStore):
    """One connection per store, serialised by a lock; other processes share the file through WAL."""

    #: How long a writer waits for another process's lock, milliseconds.
    busy_timeout_ms = 10_000

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.RLock()

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
                connection.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
                connection.execute("PRAGMA journal_mode = WAL")
                connection.execute("PRAGMA synchronous = NORMAL")
                connection.executescript(_SCHEMA)
                _add_missing_columns(connection)
            except (sqlite3.Error, OSError) as error:
                raise BrokerUnavailableError(f"job store {self.path} unusable: {error}") from None
            self._connection = connection
        return self._connection

    def _transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            connection = self._connect()
            try:
                connection.execute("BEGIN IMMEDIATE")
                try:
                    result = work(connection)
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
                connection.execute("COMMIT")
                return result
            except sqlite3.Error as error:
                raise BrokerUnavailableError(f"job store {self.path} failed: {error}") from None

    def create(self, record: JobRecord, *, max_unfinished: int | None = None) -> tuple[JobRecord, bool]:
        def work(connection: sqlite3.Connection) -> tuple[JobRecord, bool]:
            existing = _select(connection, record.job_id)
            if existing is not None:
                return existing, False
            if max_unfinished is not None:
                unfinished = _count_unfinished(connection)
                if unfinished >= max_unfinished:
                    raise QueueFullError(unfinished, max_unfinished)
            fields = record.to_fields()
            connection.execute(
                f"INSERT INTO preview_jobs ({', '.join(fields)}) VALUES ({', '.join('?' * len(fields))})",
                list(fields.values()),
            )
            return record, True

        return self._transaction(work)

    def get(self, job_id: str) -> JobRecord | None:
        with self._lock:
            try:
                return _select(self._connect(), job_id)
            except sqlite3.Error as error:
                raise BrokerUnavailableError(f"job store {self.path} failed: {error}") from None

    def apply_changes(
        self,
        job_id: str,
        changes: dict[str, Any],
        *,
        allow_finished: bool = False,
        count_attempt: bool = False,
        max_attempts: int | None = None,
    ) -> JobRecord | None:
        assignments = ", ".join(f"{name} = ?" for name in changes)
        if count_attempt:
            assignments += ", attempts = CAST(attempts AS INTEGER) + 1"
        values = [encode_field(name, value) for name, value in changes.items()]

        def work(connection: sqlite3.Connection) -> JobRecord | None:
            # BEGIN IMMEDIATE holds the write lock: nothing changes between this read and the update.
            record = _select(connection, job_id)
            if record is None or leaves_unchanged(
                record, allow_finished=allow_finished, count_attempt=count_attempt, max_attempts=max_attempts
            ):
                return record
            connection.execute(f"UPDATE preview_jobs SET {assignments} WHERE job_id = ?", [*values, job_id])
            return _select(connection, job_id)

        result: JobRecord | None = self._transaction(work)
        return result

    def count_unfinished(self) -> int:
        with self._lock:
            try:
                return _count_unfinished(self._connect())
            except sqlite3.Error as error:
                raise BrokerUnavailableError(f"job store {self.path} failed: {error}") from None

    def acquire_lease(self, name: str, owner: str, ttl_s: float) -> bool:
        check_lease(name, owner, ttl_s)

        def work(connection: sqlite3.Connection) -> bool:
            now = time.time()
            cursor = connection.execute(
                "INSERT INTO preview_leases (name, owner, expires_at) VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at"
                " WHERE preview_leases.owner = excluded.owner OR preview_leases.expires_at <= ?",
                [name, owner, now + ttl_s, now],
            )
            return cursor.rowcount == 1

        return bool(self._transaction(work))

    def release_lease(self, name: str, owner: str) -> None:
        check_lease(name, owner)
        self._transaction(
            lambda connection: connection.execute(
                "DELETE FROM preview_leases WHERE name = ? AND owner = ?", [name, owner]
            )
        )

    def delete(self, job_id: str) -> None:
        self._transaction(lambda connection: connection.execute("DELETE FROM preview_jobs WHERE job_id = ?", [job_id]))

    def ping(self) -> None:
        with self._lock:
            try:
                self._connect().execute("SELECT 1").fetchone()
            except sqlite3.Error as error:
                raise BrokerUnavailableError(f"job store {self.path} failed: {error}") from None

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def stale_unfinished(self, updated_before: float, *, limit: int) -> list[JobRecord]:
        check_limit(limit)
        with self._lock:
            try:
                rows = self._connect().execute(
                    f"SELECT {', '.join(_COLUMNS)} FROM preview_jobs"
                    f" WHERE {_NOT_FINISHED} AND CAST(updated_at AS REAL) < ?"
                    " ORDER BY CAST(updated_at AS REAL) LIMIT ?",
                    [*_TERMINAL, updated_before, limit],
                ).fetchall()
            except sqlite3.Error as error:
                raise BrokerUnavailableError(f"job store {self.path} failed: {error}") from None
        return [JobRecord.from_fields(dict(zip(_COLUMNS, row, strict=True))) for row in rows]


def _add_missing_columns(connection: sqlite3.Connection) -> None:
    """Upgrade a job database of an earlier release in place: add the fields it lacks, with their defaults.

    Idempotent, and safe when several processes open the file at once.
    """
    present = {row[1] for row in connection.execute("PRAGMA table_info(preview_jobs)")}
    for field in attrs.fields(JobRecord):
        if field.name in present:
            continue
        default = encode_field(field.name, field.default).replace("'", "''")
        try:
            connection.execute(f"ALTER TABLE preview_jobs ADD COLUMN {field.name} TEXT NOT NULL DEFAULT '{default}'")
        except sqlite3.OperationalError as error:
            if "duplicate column" not in str(error):  # another process added it first
                raise


def _select(connection: sqlite3.Connection, job_id: str) -> JobRecord | None:
    row = connection.execute(f"SELECT {', '.join(_COLUMNS)} FROM preview_jobs WHERE job_id = ?", [job_id]).fetchone()
    return JobRecord.from_fields(dict(zip(_COLUMNS, row, strict=True))) if row else None


def _count_unfinished(connection: sqlite3.Connection) -> int:
    return int(connection.execute(f"SELECT COUNT(*) FROM preview_jobs WHERE {_NOT_FINISHED}", _TERMINAL).fetchone()[0])
