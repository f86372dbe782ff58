"""``DELETE /{jobId}``: cancel a queued or running job.

A running renderer is killed within about a second; the job ends
``cancelled`` and never produces an artifact. Cancelling a cancelled job
answers 200 again (DELETE is idempotent); a job that has succeeded or failed
answers 409 ``job_finished``.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from preview_actors.cancel import cancel_job
from preview_actors.store import JobState

from .context import ApiContext
from .errors import ApiError
from .jobs import job_id_of, load_job
from .responses import NO_STORE, ApiJSONResponse
from .routing import JobRoute
from .status import artifact_links


def cancel_route(context: ApiContext) -> JobRoute:
    async def cancel(request: Request) -> Response:
        context.require_caller(request)
        job_id = job_id_of(request)
        record = await load_job(context.runtime, job_id)
        await context.require_authorized(request, record.project_id)
        record = await run_in_threadpool(cancel_job, job_id, runtime=context.runtime)
        if record.state is not JobState.CANCELLED:
            raise ApiError(409, "job_finished", f"job {job_id} has {record.state.value} already", field="jobId")
        document = record.to_status()
        document["artifact"] = artifact_links(request, record, context.runtime.settings.signing_key)
        return ApiJSONResponse(document, headers=NO_STORE)

    return JobRoute("/{jobId}", cancel, methods=["DELETE"], name="cancel")
