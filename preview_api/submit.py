"""``POST /``: validate a job request, ask the host's ``authorize``, queue the job.

202 for a new job, 200 for an idempotent repeat (same ``jobId``, same
content), both ``{jobId, state, statusUrl}`` with ``Location: statusUrl``.
Refusals are counted in ``preview_jobs_rejected_total{reason}``. The job is
recorded and enqueued by ``submit_preview_async`` (one round trip when broker
and store share a Redis), and 202 means the message reached the broker.

Bodies up to :data:`INLINE_VALIDATION_BYTES` are validated on the event loop
(about 0.1 ms for a typical chapter, cheaper than a hop to a thread); bigger
ones in a worker thread, so a large body never stalls other requests.
"""

from __future__ import annotations

import functools
import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from preview_actors import logs, metrics
from preview_actors.errors import PreviewError
from preview_actors.request import parse_job_request
from preview_actors.submit import submit_preview_async

from .body import parse_json, read_bounded, require_json
from .context import ApiContext
from .errors import api_error_for
from .request_id import get_request_id, set_request_id
from .responses import ApiJSONResponse
from .urls import absolute_url

logger = logging.getLogger(__name__)

#: Bodies up to this size are validated on the event loop, bigger ones in a thread, bytes.
INLINE_VALIDATION_BYTES = 64 * 1024

#: Error code of a refusal → ``reason`` label of ``preview_jobs_rejected_total``.
REJECTION_REASONS = {
    "bad_request": "invalid",
    "invalid_json": "invalid",
    "invalid_request": "invalid",
    "not_json": "not_json",
    "too_large": "too_large",
    "forbidden": "forbidden",
    "unauthorized": "unauthorized",
    "invalid_token": "unauthorized",
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
            raise answer from None

    return Route("/", submit, methods=["POST"], name="submit")


async def _submit(context: ApiContext, request: Request) -> Response:
    runtime = context.runtime
    settings = runtime.settings
    context.require_caller(request)
    require_json(request)
    body = await read_bounded(request, settings.max_body_bytes)
    data = parse_json(body)
    validate = functools.partial(parse_job_request, data, limits=settings.limits, allowed_hosts=settings.asset_allowed_hosts)
    job_request = validate() if len(body) <= INLINE_VALIDATION_BYTES else await run_in_threadpool(validate)
    request_id = job_request.request_id or get_request_id(request)
    set_request_id(request, request_id)
    with logs.bound(requestId=request_id):
        await context.require_authorized(request, job_request.project_id)
        submission = await submit_preview_async(job_request, request_id=request_id, runtime=runtime)
    record = submission.record
    if submission.created:
        metrics.JOBS_SUBMITTED.inc()
    status_url = absolute_url(request, f"/{record.job_id}/status")
    return ApiJSONResponse(
        {"jobId": record.job_id, "state": record.state.value, "statusUrl": status_url},
        status_code=202 if submission.created else 200,
        headers={"Location": status_url, "Cache-Control": "no-store"},
    )

