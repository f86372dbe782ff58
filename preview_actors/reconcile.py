"""Reconciliation: an unfinished job whose message is gone is queued again, or failed naming why.

A job's message can disappear — a Redis with an eviction policy evicts it, an
operator deletes it by hand, a bug loses it — and its record then says
``queued`` (or ``rendering``…) forever. A pass of :class:`Reconciler`:

1. takes the store's lease :data:`LEASE_NAME` (one pass at a time across every
   worker and machine sharing the job store; another holder means "skip");
2. reads at most :data:`BATCH` unfinished jobs whose record has not changed for
   ``PREVIEW_RECONCILE_GRACE_S`` (oldest first);
3. takes one consistent census of the broker's messages (:func:`message_census`):
   every queue, delay queue and dead-letter queue, and every message a worker
   holds, live or dead (the broker gives those back itself);
4. for each job with no message, re-reads its record: if it changed meanwhile
   the job has moved on; otherwise it is re-enqueued from its stage — a fresh
   render → hash → finalize pipeline, as a submit sends, for a job whose render
   never finished; hash → finalize when the render's output is still on disk —
   or failed (``error.code == "message_lost"``) when it cannot be re-enqueued
   (its stored request can no longer be rendered). Each job acted on is
   counted in ``preview_jobs_reconciled_total{action}`` and logged with its id.

What each broker can show:

- SQLite: every row of ``dramatiq_messages`` in the broker's file, whatever
  its state (queued, taken, delayed, dead), read in one statement (one snapshot).
- Redis: the ``<ns>:<queue>.msgs``, ``.DQ.msgs`` and ``.XQ.msgs`` hashes of every
  declared queue, which hold every queued, delayed, taken-but-unacked and
  dead-lettered message, read in one MULTI (one snapshot). This transfers every
  message body of those queues once per pass that finds a stale job, so memory
  is bounded by the queues' size (``PREVIEW_QUEUE_MAX`` jobs, plus dead letters
  kept for a week), not by the number of jobs ever run.
- stub: its queues and dead letters, read with every queue's lock held. A
  message a worker of this process has taken is not visible; while any is
  taken, the census is incomplete (jobs not found are "unknown").
- RabbitMQ: AMQP cannot list a queue without taking its messages, and cannot
  show unacknowledged ones at all, so the census is always incomplete: a job
  not accounted for is "unknown", and nothing is done for it until its record
  has not changed for ``PREVIEW_RECONCILE_UNKNOWN_AFTER_S`` (default a day; 0
  never). A job that old is either lost or waiting behind a day of backlog;
  re-enqueueing the second kind costs only a duplicate message, which finds the
  job finished (or its execution lease held) and does nothing, while never
  acting would leave the first kind queued forever. Set it to 0 to keep
  RabbitMQ jobs untouched.

A message is the job's when its first argument is the job id (every stage's
actor takes the job id first); an undecodable message makes the census
incomplete, as it may be anybody's.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import socket
import sqlite3
import sys
import time
import uuid
from collections.abc import Callable, Collection, Iterable
from typing import Any

import attrs
import dramatiq
from dramatiq.common import dq_name, xq_name
from dramatiq.errors import DecodeError

from . import metrics
from .brokers import connection_errors
from .errors import BrokerUnavailableError, ValidationError
from .jobfiles import JobFiles
from .request import JobRequest
from .settings import Settings
from .store import JobRecord, JobState, JobStore

logger = logging.getLogger(__name__)

#: The store lease that lets one pass run at a time across all workers.
LEASE_NAME = "preview:reconcile"
#: How long a pass holds the lease without renewing it, seconds; it renews before acting on each job.
LEASE_TTL_S = 60.0
#: Stale unfinished jobs looked at per pass, oldest first.
BATCH = 100
#: How long reading the SQLite broker's file waits for a writer's lock, seconds.
SQLITE_BUSY_TIMEOUT_S = 5.0

#: The pipeline's actors (declared in :mod:`preview_actors.actors`; named here so
#: that this module, which the worker middleware imports, imports no actor).
RENDER_ACTOR = "preview_render"
HASH_ACTOR = "preview_hash"
FINALIZE_ACTOR = "preview_finalize"
#: Where a render attempt's renderer writes, inside the attempt's folder (see :mod:`preview_actors.stages`).
RENDER_OUT_DIR = "out"


class Action(str, enum.Enum):
    """What a pass did for a job with no message (the ``action`` label of ``preview_jobs_reconciled_total``)."""

    #: A new message was enqueued for the job's stage.
    REQUEUED = "requeued"
    #: The job could not be re-enqueued and is now ``failed``, its error saying why.
    FAILED = "failed"


@attrs.frozen
class Census:
    """Which of some jobs have a message in the broker, from one consistent look."""

    #: Job ids, of those asked about, with a message queued, delayed, held by a worker or dead-lettered.
    found: frozenset[str]
    #: False when the broker could not show every message: a job not found may still have one.
    complete: bool


@attrs.frozen
class ReconcilePass:
    """What one pass saw and did; job ids in each tuple."""

    #: False when another process held the lease: nothing was looked at.
    ran: bool
    #: Unfinished jobs without a status change for longer than the grace period.
    checked: int = 0
    #: Of those, jobs whose message the broker holds: left alone.
    present: tuple[str, ...] = ()
    #: Jobs the broker cannot account for (RabbitMQ) and not yet old enough to act on: left alone.
    unknown: tuple[str, ...] = ()
    requeued: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "ran": self.ran,
            "checked": self.checked,
            "present": list(self.present),
            "unknown": list(self.unknown),
            "requeued": list(self.requeued),
            "failed": list(self.failed),
        }


def default_owner() -> str:
    """A lease owner unique to this reconciler: host, process id and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@attrs.define
class Reconciler:
    """Runs reconciliation passes; the store's lease lets one pass run at a time across processes."""

    broker: dramatiq.Broker
    store: JobStore
    settings: Settings
    #: Who holds the lease during this reconciler's passes.
    owner: str = attrs.field(factory=default_owner)
    #: Stale jobs looked at per pass.
    batch: int = BATCH

    def run_once(self) -> ReconcilePass:
        """One pass, unless another process is running one (then ``ran`` is False).

        Raises ``BrokerUnavailableError`` when the store or the broker cannot
        be reached; whatever was done before that stays done.
        """
        if not self.store.acquire_lease(LEASE_NAME, self.owner, LEASE_TTL_S):
            logger.debug("Another process holds the reconciliation lease; skipping this pass.")
            return ReconcilePass(ran=False)
        try:
            return self._pass()
        finally:
            with contextlib.suppress(BrokerUnavailableError):  # it expires by itself
                self.store.release_lease(LEASE_NAME, self.owner)

    def _pass(self) -> ReconcilePass:
        settings = self.settings
        now = time.time()
        stale = self.store.stale_unfinished(now - settings.reconcile_grace_s, limit=self.batch)
        if not stale:
            return ReconcilePass(ran=True)
        census = message_census(self.broker, [record.job_id for record in stale])
        unknown_after_s = settings.reconcile_unknown_after_s
        present: list[str] = []
        unknown: list[str] = []
        done: dict[Action, list[str]] = {Action.REQUEUED: [], Action.FAILED: []}
        for record in stale:
            if record.job_id in census.found:
                present.append(record.job_id)
                continue
            if not census.complete and not (unknown_after_s and now - record.updated_at > unknown_after_s):
                unknown.append(record.job_id)
                continue
            if not self.store.acquire_lease(LEASE_NAME, self.owner, LEASE_TTL_S):
                logger.warning("Lost the reconciliation lease to another process; this pass stops here.")
                break
            current = self.store.get(record.job_id)
            if current is None or current.finished or current.updated_at != record.updated_at:
                continue  # it moved on since it was read: something holds it after all
            action = self._recover(current, now=now, known_lost=census.complete)
            done[action].append(current.job_id)
        if unknown:
            logger.debug("%d stale jobs have no message the broker can show; left alone.", len(unknown))
        return ReconcilePass(
            ran=True,
            checked=len(stale),
            present=tuple(present),
            unknown=tuple(unknown),
            requeued=tuple(done[Action.REQUEUED]),
            failed=tuple(done[Action.FAILED]),
        )

    def _recover(self, record: JobRecord, *, now: float, known_lost: bool) -> Action:
        """Re-enqueue ``record``'s job from its stage, or fail it naming why."""
        job_id = record.job_id
        where = "on no queue" if known_lost else "unaccounted for by the broker"
        age_s = now - record.updated_at
        try:
            request = JobRequest.from_json(record.request)
        except ValidationError as error:
            reason = f"its message was lost and its stored request cannot be rendered again: {error}"
            self.store.update(
                job_id,
                state=JobState.FAILED,
                error={"code": "message_lost", "message": reason, "stage": _stage_of(record), "retryable": False},
            )
            metrics.JOBS_RECONCILED.labels(action=Action.FAILED.value).inc()
            metrics.JOBS_COMPLETED.labels(outcome="failed").inc()
            logger.error(
                "Job %s was %s for %.0fs (state %s) and cannot be re-enqueued; failed: %s",
                job_id, where, age_s, record.state, reason, extra=_log_fields(record),
            )
            return Action.FAILED
        rendered = self._rendered_output(record, request) if _stage_of(record) != "render" else None
        def message(actor_name: str, *args: Any) -> dramatiq.Message[Any]:
            actor = self.broker.get_actor(actor_name)
            return actor.message_with_options(args=(job_id, *args), request_id=record.request_id)

        if rendered is not None:
            stage = "hash"
            messages = [message(HASH_ACTOR, rendered), message(FINALIZE_ACTOR)]
        else:
            stage = "render"
            messages = [message(RENDER_ACTOR), message(HASH_ACTOR), message(FINALIZE_ACTOR)]
        # The record changes first: a render message must find the job not rendered yet (a render
        # stage skips a job in hashing or finalizing), and no pass may take the job for lost again
        # within the grace period. If the enqueue then fails, a pass after the grace period retries.
        if stage == "render":
            self.store.update(job_id, state=JobState.QUEUED, progress=0.0, enqueued=True)
        else:
            self.store.update(job_id, enqueued=True)
        try:
            dramatiq.pipeline(messages, broker=self.broker).run()
        except connection_errors() as error:
            raise BrokerUnavailableError(f"broker unreachable: {error}") from None
        metrics.JOBS_RECONCILED.labels(action=Action.REQUEUED.value).inc()
        logger.warning(
            "Job %s was %s for %.0fs (state %s); re-enqueued from its %s stage.",
            job_id, where, age_s, record.state, stage, extra=_log_fields(record),
        )
        return Action.REQUEUED

    def _rendered_output(self, record: JobRecord, request: JobRequest) -> dict[str, Any] | None:
        """The hash stage's input for the job's last render, when its output folder is still there."""
        if record.attempts < 1:
            return None
        files = JobFiles(self.settings.data_dir, record.job_id)
        out_dir = files.attempt(record.attempts) / RENDER_OUT_DIR
        if not out_dir.is_dir():
            return None
        return {"attempt": record.attempts, "outDir": files.relative(out_dir), "dryRun": request.dry_run}


def _stage_of(record: JobRecord) -> str:
    """The stage an unfinished job is in: render, hash or finalize."""
    if record.state is JobState.HASHING:
        return "hash"
    if record.state is JobState.FINALIZING:
        return "finalize"
    if record.state is JobState.RETRYING and record.error and record.error.get("stage") in ("hash", "finalize"):
        return str(record.error["stage"])
    return "render"


def _log_fields(record: JobRecord) -> dict[str, str]:
    return {"jobId": record.job_id, "requestId": record.request_id}


# --- where the messages are, per broker ----------------------------------------


def message_census(broker: dramatiq.Broker, job_ids: Collection[str]) -> Census:
    """Which of ``job_ids`` have a message anywhere in ``broker``, from one consistent look.

    Raises ``BrokerUnavailableError`` when the broker cannot be read.
    """
    wanted = frozenset(job_ids)
    census = _census_function(broker)
    if census is None:
        logger.warning("Cannot list the messages of a %s; no job is taken for lost.", type(broker).__name__)
        return Census(frozenset(), complete=False)
    try:
        return census(broker, wanted)
    except connection_errors() as error:
        raise BrokerUnavailableError(f"broker unreachable: {error}") from None


def _census_function(broker: dramatiq.Broker) -> Callable[[Any, frozenset[str]], Census] | None:
    """The census of ``broker``'s kind; drivers that were never imported are not asked."""
    from dramatiq.brokers.stub import StubBroker

    if isinstance(broker, StubBroker):
        return _stub_census
    kinds: list[tuple[str, str, Callable[[Any, frozenset[str]], Census]]] = [
        ("preview_actors.brokers.sqlite", "SQLiteBroker", _sqlite_census),
        ("dramatiq.brokers.redis", "RedisBroker", _redis_census),
        ("dramatiq.brokers.rabbitmq", "RabbitmqBroker", _rabbitmq_census),
    ]
    for module_name, class_name, census in kinds:
        module = sys.modules.get(module_name)
        if module is not None and isinstance(broker, getattr(module, class_name)):
            return census
    return None


def _stub_census(broker: Any, wanted: frozenset[str]) -> Census:
    """Queued and delayed messages and dead letters, with every queue's lock held (one snapshot)."""
    queues = [broker.queues[name] for name in sorted(broker.queues)]
    with contextlib.ExitStack() as locks:
        for queue in queues:
            locks.enter_context(queue.mutex)
        bodies = [data for queue in queues for data in list(queue.queue)]
        # A message a worker took stays an unfinished task until acked: held, but not visible.
        held = any(queue.unfinished_tasks > len(queue.queue) for queue in queues)
        dead = [proxy.args for letters in list(broker.dead_letters_by_queue.values()) for proxy in list(letters)]
    found, readable = _job_ids_in(bodies, wanted)
    found |= {args[0] for args in dead if args and args[0] in wanted}
    return Census(frozenset(found), complete=readable and not held)


def _sqlite_census(broker: Any, wanted: frozenset[str]) -> Census:
    """Every row of the broker's table, whatever its state, read in one statement."""
    broker.ping()  # the file and its table exist from here on (the broker creates them)
    try:
        connection = sqlite3.connect(broker.path, timeout=SQLITE_BUSY_TIMEOUT_S, isolation_level=None)
    except sqlite3.Error as error:
        raise BrokerUnavailableError(f"SQLite broker {broker.path} unusable: {error}") from None
    try:
        rows = connection.execute("SELECT message FROM dramatiq_messages")
        found, readable = _job_ids_in((row[0] for row in rows), wanted)
    except sqlite3.Error as error:
        raise BrokerUnavailableError(f"SQLite broker {broker.path} failed: {error}") from None
    finally:
        connection.close()
    return Census(frozenset(found), complete=readable)


def _redis_census(broker: Any, wanted: frozenset[str]) -> Census:
    """The message hashes of every declared queue, its delay queue and its dead letters, in one MULTI."""
    namespace = broker.namespace
    keys = []
    for queue in sorted(broker.get_declared_queues()):
        keys += [f"{namespace}:{name}.msgs" for name in (queue, dq_name(queue), xq_name(queue))]
    pipe = broker.client.pipeline(transaction=True)
    for key in keys:
        pipe.hvals(key)
    answers = pipe.execute()
    found, readable = _job_ids_in((body for bodies in answers for body in bodies), wanted)
    return Census(frozenset(found), complete=readable)


def _rabbitmq_census(broker: Any, wanted: frozenset[str]) -> Census:
    """AMQP shows no unacknowledged message and lists none without taking it: nothing is known."""
    return Census(frozenset(), complete=False)


def _job_ids_in(bodies: Iterable[bytes | str], wanted: frozenset[str]) -> tuple[set[str], bool]:
    """The wanted job ids among encoded messages, and whether every message could be decoded."""
    found: set[str] = set()
    readable = True
    for body in bodies:
        try:
            message = dramatiq.Message.decode(body.encode("utf-8") if isinstance(body, str) else body)
        except DecodeError:
            readable = False
            continue
        args = message.args
        if args and isinstance(args[0], str) and args[0] in wanted:
            found.add(args[0])
    return found, readable
