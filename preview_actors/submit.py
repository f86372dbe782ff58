"""Submitting a job: validate, record it as ``queued``, enqueue the pipeline."""

from __future__ import annotations

import logging
import uuid
from typing import Any, Mapping

import attrs
import dramatiq

from .brokers import connection_errors
from .errors import BrokerUnavailableError, JobConflictError
from .model import JobRequest, content_sha256, parse_job_request
from .runtime import Runtime, current
from .store import JobRecord

logger = logging.getLogger(__name__)


@attrs.frozen
class Submission:
    record: JobRecord
    #: False when the jobId existed already with the same request (an idempotent repeat).
    created: bool


def submit_preview(
    request: JobRequest | Mapping[str, Any],
    *,
    request_id: str | None = None,
    runtime: Runtime | None = None,
) -> Submission:
    """Validate ``request`` (a :class:`JobRequest` or the POST body as parsed JSON) and queue the job.

    ``jobId`` is the idempotency key: the same id with the same content gives
    back the existing job; with other content, :class:`JobConflictError`.
    Raises :class:`ValidationError`, :class:`QueueFullError` (when
    ``PREVIEW_QUEUE_MAX`` jobs are unfinished) and :class:`BrokerUnavailableError`.
    """
    runtime = runtime or current()
    settings = runtime.settings
    if not isinstance(request, JobRequest):
        request = parse_job_request(request, limits=settings.limits, allowed_hosts=settings.asset_allowed_hosts)
    request = attrs.evolve(
        request,
        job_id=request.job_id or str(uuid.uuid4()),
        request_id=request.request_id or request_id or uuid.uuid4().hex,
    )
    job_id = request.job_id
    if job_id is None or request.request_id is None:  # pragma: no cover - filled in just above
        raise RuntimeError("job and request ids must be set")
    record = JobRecord(
        job_id=job_id,
        project_id=request.project_id,
        request_id=request.request_id,
        content_sha256=content_sha256(request),
        request=request.to_json(),
    )
    stored, created = runtime.store.create(record, max_unfinished=settings.queue_max)
    if not created:
        if stored.content_sha256 != record.content_sha256:
            raise JobConflictError(job_id)
        if stored.enqueued:
            return Submission(stored, created=False)
        # An earlier submit recorded the job but could not enqueue it: finish that now.
    try:
        _enqueue(runtime, stored)
    except BrokerUnavailableError:
        if created:  # leave no record that holds a queue slot for a job that was never queued
            try:
                runtime.store.delete(job_id)
            except BrokerUnavailableError:
                pass  # the store is down too; a resubmission of this jobId enqueues it
        raise
    updated = runtime.store.update(job_id, enqueued=True)
    logger.info("Job %s queued.", job_id, extra={"jobId": job_id, "requestId": stored.request_id})
    return Submission(updated or stored, created=created)


def pipeline_for(record: JobRecord, broker: dramatiq.Broker) -> dramatiq.pipeline:
    """render → hash → finalize for one job, each message carrying the request id for logs."""
    from .actors import finalize, hash_artifacts, render

    options = {"request_id": record.request_id}
    return dramatiq.pipeline(
        [
            render.message_with_options(args=(record.job_id,), **options),
            hash_artifacts.message_with_options(args=(record.job_id,), **options),
            finalize.message_with_options(args=(record.job_id,), **options),
        ],
        broker=broker,
    )


def _enqueue(runtime: Runtime, record: JobRecord) -> None:
    try:
        pipeline_for(record, runtime.broker).run()
    except connection_errors() as error:
        raise BrokerUnavailableError(f"broker unreachable: {error}") from None
