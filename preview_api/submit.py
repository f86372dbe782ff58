"""``POST /``: validate a job request, ask the host's ``authorize``, queue the job.

202 for a new job, 200 for an idempotent repeat (same ``jobId``, same
content), both ``{jobId, state, statusUrl}`` with ``Location: statusUrl``.
Refusals are counted in ``preview_jobs_rejected_total{reason}``. The store
records the job and enqueues it in one call (``submit_preview``), and answers
202 only when the message reached the broker.
"""

from __future__ import annotations

import logging

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from preview_actors import logs, metrics
from preview_actors.errors import PreviewError, QueueFullError
from preview_actors.model import parse_job_request
from preview_actors.runtime import Runtime
from preview_actors.submit import submit_preview

from .body import parse_json, read_bounded, require_json
from .context import ApiContext
from .errors import api_error_for
from .request_id import get_request_id, set_request_id
from .responses import ApiJSONResponse
from .urls import absolute_url

logger = logging.getLogger(__name__)

#: Error code of a refusal → ``reason`` label of ``preview_jobs_rejected_total``.
REJECTION_REASONS = {
    "bad_request": "invalid",
    "invalid_json": "invalid",
    "invalid_request": "invalid",
    "not_json": "not_json",
    "too_large": "too_large",
    "forbidden": "forbidden",
    "job_conflict": "conflict",
    "queue_full": "queue_full",
    "unavailable": "unavailable",
}


def submit_route(context: ApiContext) -> Route:
    async def submit(request: Request) -> Response:
        try:
            return await _submit(context, request)
        except PreviewError as error:
            answer = api_error_for(error)
            reason = REJECTION_REASONS.get(answer.code)
            if reason is not None:
                metrics.JOBS_REJECTED.labels(reason=reason).inc()
            if isinstance(error, QueueFullError):
                metrics.QUEUE_DEPTH.set(error.unfinished)
            raise answer from None

    return Route("/", submit, methods=["POST"], name="submit")


async def _submit(context: ApiContext, request: Request) -> Response:
    runtime = context.runtime
    settings = runtime.settings
    require_json(request)
    data = parse_json(await read_bounded(request, settings.max_body_bytes))
    job_request = await run_in_threadpool(
        parse_job_request, data, limits=settings.limits, allowed_hosts=settings.asset_allowed_hosts
    )
    request_id = job_request.request_id or get_request_id(request)
    set_request_id(request, request_id)
    with logs.bound(requestId=request_id):
        await context.require_authorized(request, job_request.project_id)
        submission = await run_in_threadpool(submit_preview, job_request, request_id=request_id, runtime=runtime)
    record = submission.record
    if submission.created:
        metrics.JOBS_SUBMITTED.inc()
    status_url = absolute_url(request, f"/{record.job_id}/status")
    return ApiJSONResponse(
        {"jobId": record.job_id, "state": record.state.value, "statusUrl": status_url},
        status_code=202 if submission.created else 200,
        headers={"Location": status_url, "Cache-Control": "no-store"},
        background=BackgroundTask(_refresh_queue_depth, runtime),
    )


def _refresh_queue_depth(runtime: Runtime) -> None:
    """Set ``preview_queue_depth`` after the answer is sent (a store round trip the client need not wait for)."""
    try:
        metrics.QUEUE_DEPTH.set(runtime.store.count_unfinished())
    except Exception as error:  # noqa: BLE001 - a metric is best effort; the job is queued already
        logger.warning("Could not read the queue depth: %s", error)

