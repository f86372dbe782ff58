"""A Dramatiq broker on one SQLite file that loses no message.

Built on ``dramatiq-sqlite``: its ``dramatiq_messages`` table is reused, and
its ``Database`` (WAL pragmas, a lock, commit or rollback on leaving) is
subclassed; its broker and consumer are replaced, not subclassed, because every
method of them needs fixing in 0.1.0 (``requeue`` is a SQL syntax error,
taken messages stay 'consumed' forever when a worker dies, the prefetch
back-off never resets, ``sqlite:///rel.db`` becomes ``/rel.db``, no
``join``/``flush``).

Schema: dramatiq-sqlite's table, to which three columns are added when missing
(``ALTER TABLE``, idempotent, so a 0.1.0 file or one of an earlier version of
this broker is upgraded in place)::

    dramatiq_messages(
        message_id   TEXT PRIMARY KEY,  -- one row per message id: enqueue is INSERT OR REPLACE
        queue_name   TEXT NOT NULL,     -- "q" or its delay queue "q.DQ"; dead letters under "q"
        state        TEXT NOT NULL,     -- 'queued' | 'consumed' | 'rejected' (dead letter)
        message      TEXT NOT NULL,     -- the encoded dramatiq Message
        mtime        INTEGER NOT NULL,  -- last change, epoch seconds (dramatiq-sqlite's unit)
        consumer_id  TEXT,              -- added: the consumer holding the lease
        leased_until INTEGER,           -- added: end of that lease, epoch milliseconds
        delivery_id  TEXT               -- added: this take of the row, new at each take
    )

Leases: a consumer takes messages with one ``UPDATE … RETURNING`` that marks
them 'consumed' under its id until ``now + lease_ms``, each with a new
``delivery_id``; a message whose lease
has run out (or that 0.1.0 left 'consumed' without one) is taken again by any
consumer of its queue. While a consumer lives, the worker's consumer thread
calls ``__next__`` without pause, and every ``lease_ms / 3`` that renews all
the rows the consumer holds (processing, prefetched, or waiting for their eta
in the delay queue). ``ack`` deletes, ``nack`` dead-letters and ``requeue``
puts back only the row of the delivery it is given (its ``delivery_id``,
carried on the message proxy): a copy the Retries middleware (or the
delay-queue consumer, or a worker stopping mid-message) re-enqueued under the
same message id before settling is never touched — not even when the same
consumer has taken that copy meanwhile, as the next delivery.

Stopping: once the worker a consumer serves begins to stop (see
:mod:`.intake`), ``__next__`` keeps renewing leases but hands out nothing
more; what the consumer took and never handed out is requeued when it closes.

Delivery is at least once: a message whose worker froze or lost its consumer
(after a database error the worker builds a new consumer; the old one stops
renewing) for longer than ``lease_ms`` may run twice.

Connections: nothing is opened or created until first use (constructing the
broker at import is free). The broker has one connection for enqueueing and
administration; each consumer has its own. ``enqueue`` wakes this process's
idle consumers of the queue at once; other processes see new messages within
``poll_interval_ms``. SQLite errors meaning "the database is unusable now"
(busy past ``BUSY_TIMEOUT_MS``, I/O, full, read-only…) cross the boundary as
dramatiq's ``ConnectionClosed``, which the worker retries; others are bugs
and are raised as they are.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import uuid4

from dramatiq.broker import Broker, Consumer, MessageProxy
from dramatiq.common import current_millis, dq_name, q_name
from dramatiq.errors import BrokerConnectionError, ConnectionClosed, ConnectionFailed, DecodeError, QueueJoinTimeout
from dramatiq.message import Message
from dramatiq.middleware import Middleware
from dramatiq_sqlite import Database

from .intake import Intake

__all__ = ["SQLiteBroker", "path_from_url"]

logger = logging.getLogger(__name__)

#: How long a consumer's hold on a message lasts unless renewed, milliseconds.
DEFAULT_LEASE_MS = 15_000

#: How long an idle consumer waits for a message before returning None, milliseconds.
DEFAULT_POLL_INTERVAL_MS = 50

#: How long dead-lettered messages are kept, milliseconds (7 days, as Redis).
DEFAULT_DEAD_MESSAGE_TTL_MS = 7 * 86_400_000

#: How long a consumer holding ``prefetch`` messages waits for an ack before
#: returning None, milliseconds. Short and constant: never a growing back-off.
PREFETCH_WAIT_MS = 5

#: How often a broker's consumers purge expired dead letters, milliseconds.
PURGE_INTERVAL_MS = 60_000

#: How long a statement waits for another process's write lock before
#: failing with ConnectionClosed, milliseconds.
BUSY_TIMEOUT_MS = 5_000

_URL_PREFIX = "sqlite:///"
_URL_FORMS = "sqlite:///relative/path.db or sqlite:////absolute/path.db"

#: SQLite primary result codes meaning "the database cannot be used now"
#: (translated to dramatiq's ConnectionClosed); other errors are bugs.
_CONNECTION_ERROR_CODES = frozenset(
    {
        5,  # SQLITE_BUSY
        6,  # SQLITE_LOCKED
        7,  # SQLITE_NOMEM
        8,  # SQLITE_READONLY
        10,  # SQLITE_IOERR
        11,  # SQLITE_CORRUPT
        13,  # SQLITE_FULL
        14,  # SQLITE_CANTOPEN
        15,  # SQLITE_PROTOCOL
        26,  # SQLITE_NOTADB
    }
)

#: Columns this broker adds to dramatiq-sqlite's table, and their types.
_ADDED_COLUMNS = {"consumer_id": "TEXT", "leased_until": "INTEGER", "delivery_id": "TEXT"}

_ENQUEUE = """
INSERT OR REPLACE INTO dramatiq_messages
    (message_id, queue_name, state, message, mtime, consumer_id, leased_until, delivery_id)
VALUES (?, ?, 'queued', ?, ?, NULL, NULL, NULL)
"""

# An expired lease: its end has passed, or 0.1.0 left the row without one.
_EXPIRED = "state = 'consumed' AND COALESCE(leased_until, 0) < :now AND consumer_id IS NOT :owner"

_HAS_WORK = f"""
SELECT EXISTS (SELECT 1 FROM dramatiq_messages WHERE queue_name = :queue AND state = 'queued')
    OR EXISTS (SELECT 1 FROM dramatiq_messages WHERE queue_name = :queue AND {_EXPIRED})
"""

# Expired leases first (they have waited longest), then the oldest queued rows.
# Each row taken gets a delivery id of its own: this take's id and the rowid.
_TAKE = f"""
UPDATE dramatiq_messages
SET state = 'consumed', consumer_id = :owner, leased_until = :until, mtime = :now_s,
    delivery_id = :take || '.' || rowid
WHERE rowid IN (
    SELECT rowid FROM (
        SELECT rowid FROM dramatiq_messages WHERE queue_name = :queue AND {_EXPIRED}
        ORDER BY rowid LIMIT :limit)
    UNION ALL
    SELECT rowid FROM (
        SELECT rowid FROM dramatiq_messages WHERE queue_name = :queue AND state = 'queued'
        ORDER BY rowid LIMIT :limit)
    LIMIT :limit)
RETURNING rowid, message_id, message, delivery_id
"""

_RENEW = """
UPDATE dramatiq_messages SET leased_until = ?
WHERE queue_name = ? AND state = 'consumed' AND consumer_id = ?
"""

# One delivery: the message id finds the row by its key, the delivery id tells this take from any other.
_HELD = "message_id = ? AND delivery_id = ? AND state = 'consumed'"

_ACK = f"DELETE FROM dramatiq_messages WHERE {_HELD}"

_NACK = f"""
UPDATE dramatiq_messages
SET state = 'rejected', queue_name = ?, message = ?, mtime = ?,
    consumer_id = NULL, leased_until = NULL, delivery_id = NULL
WHERE {_HELD}
"""

_REQUEUE = f"""
UPDATE dramatiq_messages
SET state = 'queued', mtime = ?, consumer_id = NULL, leased_until = NULL, delivery_id = NULL
WHERE {_HELD}
"""


def path_from_url(url: str) -> str:
    """The file path of a SQLite URL, by SQLAlchemy's convention.

    ``sqlite:///queue.db`` is ``queue.db`` (relative to the working directory),
    ``sqlite:////var/lib/preview/queue.db`` is ``/var/lib/preview/queue.db``.

    Raises:
      ValueError: for anything else, e.g. ``sqlite://`` (no path), a host
        part, query parameters, or ``:memory:`` (each consumer opens its own
        connection, so the file must be shared).
    """
    if not url.startswith("sqlite://"):
        raise ValueError(f"not a SQLite URL: {url!r}; use {_URL_FORMS}")
    if not url.startswith(_URL_PREFIX):
        raise ValueError(f"SQLite URL {url!r} has a host part or no path; use {_URL_FORMS}")
    path = url[len(_URL_PREFIX) :]
    if "?" in path:
        raise ValueError(f"SQLite URL {url!r}: query parameters are not supported")
    if not path:
        raise ValueError(f"SQLite URL {url!r} names no file; use {_URL_FORMS}")
    if path == ":memory:":
        raise ValueError(f"SQLite URL {url!r}: an in-memory database cannot be shared by workers; name a file")
    if path.endswith("/"):
        raise ValueError(f"SQLite URL {url!r} names a directory, not a file")
    return path


class SQLiteBroker(Broker):
    """A broker storing its queues in one SQLite file shared by every process of a machine.

    Parameters:
      path: the database file. It, its parent directories, the tables and
        connections are created on first use, not here.
      middleware: see :class:`dramatiq.Broker`.
      lease_ms: how long a consumer's hold on a message lasts without renewal.
      poll_interval_ms: how long an idle consumer waits before looking again.
      dead_message_ttl_ms: how long dead letters are kept.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        middleware: list[Middleware] | None = None,
        lease_ms: int = DEFAULT_LEASE_MS,
        poll_interval_ms: int = DEFAULT_POLL_INTERVAL_MS,
        dead_message_ttl_ms: int = DEFAULT_DEAD_MESSAGE_TTL_MS,
    ) -> None:
        for name, value in (
            ("lease_ms", lease_ms),
            ("poll_interval_ms", poll_interval_ms),
            ("dead_message_ttl_ms", dead_message_ttl_ms),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive number of milliseconds, got {value!r}")
        path = os.fspath(path)
        if not path or path == ":memory:":
            raise ValueError(f"SQLiteBroker needs a database file, got {path!r}")

        super().__init__(middleware=middleware)
        #: The database file.
        self.path: str = path
        #: How long a consumer's hold on a message lasts unless renewed, milliseconds.
        self.lease_ms = lease_ms
        #: How long an idle consumer waits for a message, milliseconds.
        self.poll_interval_ms = poll_interval_ms
        #: How long dead letters are kept before being purged, milliseconds.
        self.dead_message_ttl_ms = dead_message_ttl_ms
        self.queues: set[str] = set()
        #: Prefetch limits, and which consumers stopped taking (their worker is stopping).
        self.intake = Intake()

        self._db: _Connection | None = None  # opened on first use
        self._db_lock = threading.Lock()
        self._consumers: weakref.WeakSet[_SQLiteConsumer] = weakref.WeakSet()
        self._doorbells: dict[str, _Doorbell] = {}
        self._doorbells_lock = threading.Lock()
        self._purge_lock = threading.Lock()
        self._purge_due_ms = 0

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> Consumer:
        """A consumer of ``queue_name`` on a connection of its own.

        ``timeout`` (milliseconds) caps how long ``__next__`` waits when idle;
        ``prefetch`` is capped by :attr:`intake`'s limit for the queue.
        """
        self._connection()  # the file, its tables and added columns exist from here on
        consumer = _SQLiteConsumer(self, queue_name, self.intake.prefetch(queue_name, prefetch), timeout)
        self._consumers.add(consumer)
        return consumer

    def declare_queue(self, queue_name: str) -> None:
        if queue_name not in self.queues:
            self.emit_before("declare_queue", queue_name)
            self.queues.add(queue_name)
            self.emit_after("declare_queue", queue_name)

            delayed_name = dq_name(queue_name)
            self.delay_queues.add(delayed_name)
            self.emit_after("declare_delay_queue", delayed_name)

    def enqueue(self, message: Message[Any], *, delay: int | None = None) -> Message[Any]:
        """Store ``message`` as queued, replacing any row with its id.

        With ``delay`` (milliseconds) it goes to the delay queue with an
        ``eta`` option, exactly as with dramatiq's Redis broker.
        """
        queue_name = message.queue_name
        if delay is not None:
            queue_name = dq_name(queue_name)
            message = message.copy(queue_name=queue_name, options={"eta": current_millis() + delay})

        self.emit_before("enqueue", message, delay)
        with self._connection().transaction() as cursor:
            cursor.execute(_ENQUEUE, (message.message_id, queue_name, _to_column(message.encode()), _now_s()))
        self._doorbell(queue_name).ring()
        self.emit_after("enqueue", message, delay)
        return message

    def get_declared_queues(self) -> set[str]:
        return set(self.queues)

    def flush(self, queue_name: str) -> None:
        """Drop every message of a queue: queued, taken, delayed and dead."""
        with self._connection().transaction() as cursor:
            cursor.execute(
                "DELETE FROM dramatiq_messages WHERE queue_name IN (?, ?)",
                (queue_name, dq_name(queue_name)),
            )

    def flush_all(self) -> None:
        """Drop every message of every declared queue."""
        for queue_name in self.get_declared_queues():
            self.flush(queue_name)

    def join(self, queue_name: str, *, timeout: int | None = None) -> None:
        """Wait until the queue and its delay queue hold no queued or taken message.

        Meant for tests. ``timeout`` is in milliseconds.

        Raises:
          QueueJoinTimeout: when the timeout elapses first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout / 1000
        while True:
            with self._connection().transaction() as cursor:
                (pending,) = cursor.execute(
                    "SELECT COUNT(*) FROM dramatiq_messages"
                    " WHERE queue_name IN (?, ?) AND state IN ('queued', 'consumed')",
                    (queue_name, dq_name(queue_name)),
                ).fetchone()
            if not pending:
                return
            if deadline is not None and time.monotonic() >= deadline:
                raise QueueJoinTimeout(queue_name)
            time.sleep(self.poll_interval_ms / 1000)

    def dead_letters(self, queue_name: str | None = None) -> list[Message[Any]]:
        """The dead-lettered messages, oldest first; of one queue when named."""
        sql = "SELECT message_id, message FROM dramatiq_messages WHERE state = 'rejected'"
        params: tuple[str, ...] = ()
        if queue_name is not None:
            canonical = q_name(queue_name)
            sql += " AND queue_name IN (?, ?)"
            params = (canonical, dq_name(canonical))
        with self._connection().transaction() as cursor:
            rows = cursor.execute(sql + " ORDER BY mtime, rowid", params).fetchall()
        messages = []
        for message_id, data in rows:
            try:
                messages.append(Message.decode(_to_bytes(data)))
            except DecodeError:
                logger.warning("Dead letter %s cannot be decoded; left out.", message_id, exc_info=True)
        return messages

    def replay_dead_letter(self, message_id: str, replacement: Message[Any] | None = None) -> bool:
        """Queue a dead letter again, on its queue, without its eta.

        Its options (``retries``…) are kept, unless ``replacement`` (the same
        message id) is given to be queued in its place. Returns False when
        there is no such dead letter (e.g. it was replayed already), so
        replaying twice is harmless.
        """
        with self._connection().transaction(immediate=True) as cursor:
            row = cursor.execute(
                "SELECT message FROM dramatiq_messages WHERE message_id = ? AND state = 'rejected'",
                (message_id,),
            ).fetchone()
            if row is None:
                return False
            message = replacement or Message.decode(_to_bytes(row[0]))
            replayed = message.copy(queue_name=q_name(message.queue_name))
            replayed.options.pop("eta", None)
            cursor.execute(
                "UPDATE dramatiq_messages SET state = 'queued', queue_name = ?, message = ?, mtime = ?,"
                " consumer_id = NULL, leased_until = NULL, delivery_id = NULL WHERE message_id = ? AND state = 'rejected'",
                (replayed.queue_name, _to_column(replayed.encode()), _now_s(), message_id),
            )
        self._doorbell(replayed.queue_name).ring()
        return True

    def purge_dead_letters(self) -> int:
        """Delete dead letters older than ``dead_message_ttl_ms``; returns how many.

        Also deletes rows dramatiq-sqlite 0.1.0 left 'done'. Consumers call
        this every ``PURGE_INTERVAL_MS``.
        """
        cutoff_s = (current_millis() - self.dead_message_ttl_ms) / 1000
        with self._connection().transaction() as cursor:
            cursor.execute(
                "DELETE FROM dramatiq_messages WHERE state IN ('rejected', 'done') AND mtime <= ?",
                (cutoff_s,),
            )
            purged = cursor.rowcount
        if purged:
            logger.info("Purged %d expired dead letters.", purged)
        return purged

    def ping(self) -> None:
        """Raise a ``BrokerConnectionError`` when the database file cannot be used (readiness checks)."""
        with self._connection().transaction() as cursor:
            cursor.execute("SELECT COUNT(*) FROM dramatiq_messages WHERE rowid = 0").fetchone()

    def close(self) -> None:
        """Close the consumers still open, then the broker's connection.

        Like dramatiq's Redis broker, a closed broker connects again when used.
        """
        for consumer in list(self._consumers):
            consumer.close()
        with self._db_lock:
            db, self._db = self._db, None
        if db is not None:
            db.close()

    def _connection(self) -> _Connection:
        """The broker's own connection, opened on first use: nothing is created before."""
        with self._db_lock:
            if self._db is None:
                try:
                    Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                except OSError as error:
                    raise ConnectionFailed(error) from None
                db = _Connection(self.path)
                try:
                    _add_columns(db)
                except BaseException:
                    db.close()
                    raise
                self._db = db
            return self._db

    def _purge_if_due(self, now_ms: int) -> None:
        if now_ms < self._purge_due_ms:
            return
        with self._purge_lock:
            if now_ms < self._purge_due_ms:
                return
            self._purge_due_ms = now_ms + PURGE_INTERVAL_MS
        try:
            self.purge_dead_letters()
        except BrokerConnectionError as error:
            logger.warning("Could not purge dead letters: %s", error)

    def _doorbell(self, queue_name: str) -> _Doorbell:
        with self._doorbells_lock:
            doorbell = self._doorbells.get(queue_name)
            if doorbell is None:
                doorbell = self._doorbells[queue_name] = _Doorbell()
            return doorbell


class _SQLiteConsumer(Consumer):
    """Takes messages of one queue under leases it renews while it lives.

    ``ack``/``nack`` are called from worker threads while the consumer thread
    runs ``__next__``: the connection has a lock, the held set a condition.
    Everything it holds is known by delivery id, never by message id: the
    same message may be held twice (a delivery, and a copy handed back under
    its id and taken again before the first was settled).
    """

    def __init__(self, broker: SQLiteBroker, queue_name: str, prefetch: int, timeout_ms: int) -> None:
        self.broker = broker
        self.queue_name = queue_name
        self.prefetch = max(prefetch, 1)
        #: How long ``__next__`` waits for a message when the queue is empty, seconds.
        self.idle_wait_s = max(min(broker.poll_interval_ms, timeout_ms), 1) / 1000
        #: Who holds the leases this consumer takes (readable in the table).
        self.consumer_id = f"{socket.gethostname()}:{os.getpid()}:{uuid4().hex[:12]}"
        self._thread = threading.current_thread()  # a worker's consumer thread: see Intake
        self._renew_every_ms = max(broker.lease_ms // 3, 1)
        self._renew_due_ms = 0
        self._conn = _Connection(broker.path)
        self._doorbell = broker._doorbell(queue_name)
        self._held: set[str] = set()  # delivery ids taken, not yet acked, nacked or requeued
        self._slot_freed = threading.Condition()
        self._cache: deque[_Delivery] = deque()  # taken, not yet handed to the worker

    def __next__(self) -> MessageProxy | None:
        now = current_millis()
        if now >= self._renew_due_ms:
            self._renew(now)
        self.broker._purge_if_due(now)
        if not self._taking():
            time.sleep(self.idle_wait_s)  # still renewing what the stopping worker holds
            return None
        if self._cache:
            return self._cache.popleft()

        free = self._wait_for_free_slot()
        if free <= 0:
            return None
        rings = self._doorbell.rings
        now = current_millis()
        with self._conn.transaction() as cursor:
            (has_work,) = cursor.execute(
                _HAS_WORK, {"queue": self.queue_name, "now": now, "owner": self.consumer_id}
            ).fetchone()
        if not has_work:
            self._doorbell.wait(rings, self.idle_wait_s)
            return None
        messages = self._take(free, now)
        self._cache.extend(messages)
        # Taken while the worker began to stop (e.g. a message it just handed back): keep it for close.
        if not self._cache or not self._taking():
            return None
        return self._cache.popleft()

    def ack(self, message: MessageProxy) -> None:
        delivery_id = _delivery_id(message)
        try:
            with self._settling_connection().transaction() as cursor:
                cursor.execute(_ACK, (message.message_id, delivery_id))
        finally:
            self._release([delivery_id])

    def nack(self, message: MessageProxy) -> None:
        """Dead-letter the message, keeping its body (with the options the worker added)."""
        delivery_id = _delivery_id(message)
        try:
            with self._settling_connection().transaction() as cursor:
                cursor.execute(
                    _NACK,
                    (q_name(self.queue_name), _to_column(message.encode()), _now_s(), message.message_id, delivery_id),
                )
        finally:
            self._release([delivery_id])

    def requeue(self, messages: Iterable[MessageProxy]) -> None:
        """Put taken, unprocessed messages back, for any consumer to take at once."""
        deliveries = [(message.message_id, _delivery_id(message)) for message in messages]
        if not deliveries:
            return
        now_s = _now_s()
        logger.debug("Requeueing %d messages on %r.", len(deliveries), self.queue_name)
        try:
            with self._settling_connection().transaction(immediate=True) as cursor:
                cursor.executemany(_REQUEUE, [(now_s, *delivery) for delivery in deliveries])
        finally:
            self._release([delivery_id for _, delivery_id in deliveries])
        self._doorbell.ring()

    def close(self) -> None:
        """Requeue what was taken but never handed out, and close the connection.

        Messages handed out and not settled yet can still be acked (through
        the broker's connection); their leases are no longer renewed.
        """
        if self._conn.closed:
            return
        cached, self._cache = list(self._cache), deque()
        try:
            self.requeue(cached)
        except BrokerConnectionError as error:
            logger.warning("Could not requeue %d messages (they return when their lease ends): %s", len(cached), error)
        self._conn.close()
        self.broker._consumers.discard(self)

    def _taking(self) -> bool:
        return self.broker.intake.taking(self._thread)

    def _take(self, limit: int, now: int) -> list[_Delivery]:
        params = {
            "queue": self.queue_name,
            "owner": self.consumer_id,
            "take": uuid4().hex,
            "now": now,
            "now_s": now // 1000,
            "until": now + self.broker.lease_ms,
            "limit": limit,
        }
        with self._conn.transaction() as cursor:
            rows = cursor.execute(_TAKE, params).fetchall()
        rows.sort()  # by rowid: oldest first
        messages, undecodable = [], []
        for _, message_id, data, delivery_id in rows:
            try:
                messages.append(_Delivery(Message.decode(_to_bytes(data)), delivery_id))
            except DecodeError:
                logger.error(
                    "Message %s on %r cannot be decoded; dead-lettering it.", message_id, self.queue_name, exc_info=True
                )
                undecodable.append((message_id, delivery_id))
        with self._slot_freed:
            self._held.update(message.delivery_id for message in messages)
        if undecodable:
            with self._conn.transaction() as cursor:
                cursor.executemany(
                    "UPDATE dramatiq_messages SET state = 'rejected', consumer_id = NULL, leased_until = NULL,"
                    f" delivery_id = NULL WHERE {_HELD}",
                    undecodable,
                )
        return messages

    def _renew(self, now: int) -> None:
        self._renew_due_ms = now + self._renew_every_ms
        with self._slot_freed:
            if not self._held:
                return
        with self._conn.transaction() as cursor:
            cursor.execute(_RENEW, (now + self.broker.lease_ms, self.queue_name, self.consumer_id))

    def _wait_for_free_slot(self) -> int:
        """How many more messages may be taken, after waiting a few ms for an ack if none."""
        with self._slot_freed:
            if len(self._held) >= self.prefetch:
                self._slot_freed.wait_for(lambda: len(self._held) < self.prefetch, PREFETCH_WAIT_MS / 1000)
            return self.prefetch - len(self._held)

    def _release(self, delivery_ids: list[str]) -> None:
        with self._slot_freed:
            self._held.difference_update(delivery_ids)
            self._slot_freed.notify_all()

    def _settling_connection(self) -> _Connection:
        return self.broker._connection() if self._conn.closed else self._conn


class _Delivery(MessageProxy):
    """A taken message and the id of this delivery of it (see ``_TAKE``)."""

    def __init__(self, message: Message[Any], delivery_id: str) -> None:
        super().__init__(message)
        self.delivery_id = delivery_id


def _delivery_id(message: MessageProxy) -> str:
    """The delivery id of a message this broker's consumers handed out.

    Raises:
      TypeError: for a message that did not come from one of them.
    """
    delivery_id = getattr(message, "delivery_id", None)
    if not isinstance(delivery_id, str):
        raise TypeError(f"message {message.message_id} was not delivered by a SQLiteBroker consumer")
    return delivery_id


class _Doorbell:
    """Wakes this process's idle consumers of a queue when something is enqueued on it."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self.rings = 0

    def ring(self) -> None:
        with self._condition:
            self.rings += 1
            self._condition.notify_all()

    def wait(self, seen: int, timeout_s: float) -> None:
        """Wait until rung after ``seen`` rings, or ``timeout_s``."""
        with self._condition:
            self._condition.wait_for(lambda: self.rings != seen, timeout_s)


class _Connection(Database):  # type: ignore[misc]  # dramatiq-sqlite ships no type information
    """dramatiq-sqlite's ``Database`` (WAL pragmas, a lock, commit or rollback
    on leaving) on a connection of its own in autocommit mode, that translates
    driver errors to dramatiq's and can be closed while other threads use it."""

    def __init__(self, path: str) -> None:
        conn = None
        try:
            conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
            pragmas = {**self.concurrent_workload_pragmas, "busy_timeout": str(BUSY_TIMEOUT_MS)}
            for key, value in pragmas.items():
                conn.execute(f"PRAGMA {key} = {value}")
            self.closed = False
            super().__init__(conn)  # creates dramatiq-sqlite's tables if missing
        except sqlite3.Error as error:
            if conn is not None:
                conn.close()
            raise ConnectionFailed(error) from None

    def __enter__(self) -> sqlite3.Cursor:
        # Database.__enter__ would keep the lock if the connection was closed meanwhile.
        self.lock.acquire()
        if self.closed:
            self.lock.release()
            raise ConnectionClosed("the SQLite connection is closed")
        cursor: sqlite3.Cursor = self.conn.cursor()
        self.cursor = cursor
        return cursor

    @contextmanager
    def transaction(self, *, immediate: bool = False) -> Iterator[sqlite3.Cursor]:
        """A cursor under the lock; ``immediate`` makes the block one write transaction."""
        try:
            with self as cursor:
                if immediate:
                    if self.conn.in_transaction:  # left open by a failed COMMIT
                        self.conn.rollback()
                    cursor.execute("BEGIN IMMEDIATE")
                yield cursor
        except sqlite3.DatabaseError as error:
            if _is_connection_error(error):
                raise ConnectionClosed(error) from None
            raise

    def close(self) -> None:
        with self.lock:
            if not self.closed:
                self.closed = True
                self.conn.close()


def _add_columns(conn: _Connection) -> None:
    """Add this broker's columns to dramatiq-sqlite's table unless another process did."""

    def missing(cursor: sqlite3.Cursor) -> list[str]:
        present = {row[1] for row in cursor.execute("PRAGMA table_info(dramatiq_messages)")}
        return [name for name in _ADDED_COLUMNS if name not in present]

    with conn.transaction() as cursor:
        if not missing(cursor):
            return
    with conn.transaction(immediate=True) as cursor:
        for name in missing(cursor):
            cursor.execute(f"ALTER TABLE dramatiq_messages ADD COLUMN {name} {_ADDED_COLUMNS[name]}")


def _is_connection_error(error: sqlite3.DatabaseError) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    if code is None:  # Python < 3.11 carries no code
        return isinstance(error, sqlite3.OperationalError)
    return code & 0xFF in _CONNECTION_ERROR_CODES


def _to_column(data: bytes) -> str | bytes:
    """JSON-encoded messages are stored as text, as dramatiq-sqlite does; other encodings as blobs."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data


def _to_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def _now_s() -> int:
    return int(time.time())
