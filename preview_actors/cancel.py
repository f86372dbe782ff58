"""Cancelling a job: it ends ``cancelled`` and never produces an artifact.

A queued job is simply marked; its stages find it finished and do nothing. A
running render notices within :data:`~preview_actors.renderer.STOP_POLL_S`
(it polls the job's state) and kills its renderer's process group.

Counting: whoever cancels (the API's ``DELETE``, ``preview-worker cancel``,
a host calling :func:`cancel_job`) sends a :data:`CANCELLED_EVENT` message,
and the worker that takes it counts the job in
``preview_jobs_completed_total{outcome="cancelled"}``. The canceller counts
nothing itself: the command line exits at once, its counters with it, and
the API's count would be a second one. So every outcome of that counter is
counted by the workers, once per job, and a scrape of the workers sees them
all. (A count kept in the job store would be served by every API and worker
process alike, and a ``sum`` over them would count each job several times;
the render noticing the cancellation would miss jobs that were only queued
and count a job again for each redelivered message.)
"""

from __future__ import annotations

import logging

from . import metrics
from .errors import JobCancelled, JobNotFoundError
from .runtime import Runtime, current
from .store import JobRecord, JobState

logger = logging.getLogger(__name__)


__all__ = ["CANCELLED_EVENT", "JobCancelled", "cancel_job", "count_cancelled"]

#: Name of the actor (declared in :mod:`preview_actors.actors`) whose message tells the workers a job was cancelled.
CANCELLED_EVENT = "preview_job_cancelled"


def cancel_job(job_id: str, *, runtime: Runtime | None = None) -> JobRecord:
    """Cancel ``job_id`` unless it has finished already; return its record either way.

    Raises :class:`JobNotFoundError` for an unknown job and
    ``BrokerUnavailableError`` when the job store cannot be reached. A
    cancellation event that cannot be sent is logged, not raised: the job is
    cancelled all the same.
    """
    runtime = runtime or current()
    record = runtime.store.get(job_id)
    if record is None:
        raise JobNotFoundError(job_id)
    if record.finished:
        return record
    updated = runtime.store.update(
        job_id, state=JobState.CANCELLED, error={"code": "cancelled", "message": "cancelled on request"}
    )
    if updated is not None and updated.state is JobState.CANCELLED:
        logger.info("Job %s cancelled.", job_id)
        _announce(runtime, job_id)
    return updated or record


def _announce(runtime: Runtime, job_id: str) -> None:
    try:
        runtime.broker.get_actor(CANCELLED_EVENT).send(job_id)
    except Exception as error:  # any broker's error: the job is cancelled all the same
        logger.warning("Job %s is cancelled, but the workers could not be told, so it is not counted: %s", job_id, error)


def count_cancelled(job_id: str) -> None:
    """What a worker does with a :data:`CANCELLED_EVENT`: count the job as cancelled."""
    metrics.JOBS_COMPLETED.labels(outcome="cancelled").inc()
    logger.info("Cancellation of job %s counted.", job_id)
