"""Submitting a job: validate, record it as ``queued``, enqueue the pipeline."""

from __future__ import annotations

import functools
import logging
import uuid
import weakref
from collections.abc import Mapping
from typing import Any

import anyio.to_thread
import attrs
import dramatiq

from .brokers import connection_errors
from .errors import BrokerUnavailableError, JobConflictError
from .request import JobRequest, content_sha256_of_json, parse_job_request
from .runtime import Runtime, current
from .settings import Settings
from .store import JobRecord

logger = logging.getLogger(__name__)


@attrs.frozen
class Submission:
    record: JobRecord
    #: False when the jobId existed already with the same request (an idempotent repeat).
    created: bool
    #: Unfinished jobs right after this one was recorded, when the store told us for free.
    unfinished: int | None = None


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
    one_trip = _one_trip_submitter(runtime)
    record = new_record(request, request_id=request_id, settings=settings, enqueued=one_trip is not None)
    job_id = record.job_id
    if one_trip is not None:
        stored, created, unfinished = one_trip.submit(record, max_unfinished=settings.queue_max)
        if created:
            _log_queued(stored)
        return Submission(stored, created=created, unfinished=unfinished)
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
    _log_queued(stored)
    return Submission(updated or stored, created=created)


async def submit_preview_async(
    request: JobRequest | Mapping[str, Any],
    *,
    request_id: str | None = None,
    runtime: Runtime | None = None,
) -> Submission:
    """:func:`submit_preview` for async code: it never blocks the event loop.

    With the Redis broker and job store on one Redis database, the job is
    recorded and enqueued in one round trip on an asyncio client; otherwise
    :func:`submit_preview` runs in a worker thread. Validation runs on the
    loop: hand over a :class:`JobRequest` validated elsewhere for big bodies.
    """
    runtime = runtime or current()
    one_trip = _one_trip_submitter(runtime)
    if one_trip is None:
        return await anyio.to_thread.run_sync(functools.partial(submit_preview, request, request_id=request_id, runtime=runtime))
    record = new_record(request, request_id=request_id, settings=runtime.settings, enqueued=True)
    stored, created, unfinished = await one_trip.submit_async(record, max_unfinished=runtime.settings.queue_max)
    if created:
        _log_queued(stored)
    return Submission(stored, created=created, unfinished=unfinished)


def new_record(
    request: JobRequest | Mapping[str, Any], *, request_id: str | None, settings: Settings, enqueued: bool = False
) -> JobRecord:
    """Validate ``request`` and make its ``queued`` record, filling in the job and request ids."""
    if not isinstance(request, JobRequest):
        request = parse_job_request(request, limits=settings.limits, allowed_hosts=settings.asset_allowed_hosts)
    data = request.to_json()
    content = content_sha256_of_json(data)
    data["jobId"] = job_id = request.job_id or str(uuid.uuid4())
    data["requestId"] = request.request_id or request_id or uuid.uuid4().hex
    return JobRecord(
        job_id=job_id,
        project_id=request.project_id,
        request_id=data["requestId"],
        content_sha256=content,
        request=data,
        enqueued=enqueued,
    )


def _log_queued(record: JobRecord) -> None:
    logger.info("Job %s queued.", record.job_id, extra={"jobId": record.job_id, "requestId": record.request_id})


_one_trip_submitters: weakref.WeakKeyDictionary[Runtime, object] = weakref.WeakKeyDictionary()


def _one_trip_submitter(runtime: Runtime) -> Any:
    """The runtime's :class:`~preview_actors.submit_redis.OneTripSubmitter`, or None (not one Redis for both)."""
    try:
        return _one_trip_submitters[runtime]
    except KeyError:
        pass
    submitter = None
    if type(runtime.broker).__module__ == "preview_actors.brokers.redis":  # redis is imported already
        from .submit_redis import OneTripSubmitter

        submitter = OneTripSubmitter.for_runtime(runtime)
    _one_trip_submitters[runtime] = submitter
    return submitter


def pipeline_for(record: JobRecord, broker: dramatiq.Broker) -> dramatiq.pipeline:
    """render → hash → finalize for one job, each message carrying the request id for logs."""
    from .actors import finalize, hash_artifacts, render

    return dramatiq.pipeline(
        [
            render.message_with_options(args=(record.job_id,), request_id=record.request_id),
            hash_artifacts.message_with_options(args=(record.job_id,), request_id=record.request_id),
            finalize.message_with_options(args=(record.job_id,), request_id=record.request_id),
        ],
        broker=broker,
    )


def _enqueue(runtime: Runtime, record: JobRecord) -> None:
    try:
        pipeline_for(record, runtime.broker).run()
    except connection_errors() as error:
        raise BrokerUnavailableError(f"broker unreachable: {error}") from None
