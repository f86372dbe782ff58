"""Cancelling a job: it ends ``cancelled`` and never produces an artifact.

A queued job is simply marked; its stages find it finished and do nothing. A
running render notices within :data:`~preview_actors.renderer.STOP_POLL_S`
(it polls the job's state) and kills its renderer's process group.
"""

from __future__ import annotations

import logging

from . import metrics
from .errors import JobCancelled, JobNotFoundError
from .runtime import Runtime, current
from .store import JobRecord, JobState

logger = logging.getLogger(__name__)


__all__ = ["JobCancelled", "cancel_job"]


def cancel_job(job_id: str, *, runtime: Runtime | None = None) -> JobRecord:
    """Cancel ``job_id`` unless it has finished already; return its record either way."""
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
        metrics.JOBS_COMPLETED.labels(outcome="cancelled").inc()
        logger.info("Job %s cancelled.", job_id)
    return updated or record
