"""``GET /{jobId}/status``: the job's status document, with download links once it succeeded.

``artifact`` is ``{"video": {sha256, size, contentType, url}, "poster": {…}}``
(no video for a dry run): the storage path stays private, and each ``url`` is
absolute and, with ``PREVIEW_SIGNING_KEY`` set, signed for
:data:`~preview_api.signing.SIGNED_URL_LIFETIME_S` (else it needs the bearer token).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from preview_actors.store import JobRecord, JobState

from .context import ApiContext
from .jobs import job_id_of, load_job
from .responses import NO_STORE, ApiJSONResponse
from .routing import JobRoute
from .signing import signed_query
from .urls import absolute_url

#: Artifact roles that can be downloaded, the default first.
DOWNLOAD_ROLES = ("video", "poster")


def status_route(context: ApiContext) -> JobRoute:
    async def status(request: Request) -> Response:
        context.require_caller(request)
        job_id = job_id_of(request)
        record = await load_job(context.runtime, job_id)
        await context.require_authorized(request, record.project_id)
        document = record.to_status()
        document["artifact"] = artifact_links(request, record, context.runtime.settings.signing_key)
        return ApiJSONResponse(document, headers=NO_STORE)

    return JobRoute("/{jobId}/status", status, methods=["GET"], name="status")


def artifact_links(request: Request, record: JobRecord, signing_key: str | None) -> dict[str, Any] | None:
    if record.state is not JobState.SUCCEEDED or not record.artifact:
        return None
    links: dict[str, Any] = {}
    for role in DOWNLOAD_ROLES:
        entry = record.artifact.get(role)
        if not entry:
            continue
        query = {"role": role}
        if signing_key is not None:
            query.update(signed_query(signing_key, record.job_id, role))
        links[role] = {
            "sha256": entry["sha256"],
            "size": entry["size"],
            "contentType": entry["contentType"],
            "url": absolute_url(request, f"/{record.job_id}/artifact", query),
        }
    return links
