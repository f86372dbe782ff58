"""``GET /{jobId}/artifact?role=video|poster``: the file, streamed, with ranges and an ETag.

Checks, in order: a UUID-shaped id (404), a known role (400), credentials
(401/403, see :mod:`preview_api.auth`), the job (404), the host's
``authorize`` for bearer-token downloads (403), a succeeded job with that
artifact (409 ``not_ready``), the file below DATA_DIR (404
``artifact_missing``). Then ``If-None-Match`` (304), ``Range`` (206/416).
Artifacts are stored by content hash, so the file behind an ETag never changes.
"""

from __future__ import annotations

import logging
import os
from typing import BinaryIO

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from preview_actors.storage import ArtifactStore
from preview_actors.store import JobState

from .auth import Grant, check_download
from .context import ApiContext
from .errors import ApiError
from .files import FileSliceResponse
from .jobs import job_id_of, load_job
from .ranges import ByteRange, parse_range
from .routing import JobRoute
from .status import DOWNLOAD_ROLES

logger = logging.getLogger(__name__)

#: Seconds a client may reuse a downloaded artifact without asking again.
CACHE_MAX_AGE_S = 3600


def artifact_route(context: ApiContext) -> JobRoute:
    async def artifact(request: Request) -> ASGIApp:
        job_id = job_id_of(request)
        role = _role_of(request)
        grant = check_download(request, context.runtime.settings, job_id, role)
        record = await load_job(context.runtime, job_id)
        if grant is Grant.TOKEN:
            await context.require_authorized(request, record.project_id)
        if record.state is not JobState.SUCCEEDED:
            raise ApiError(409, "not_ready", f"job {job_id} is {record.state.value}, not succeeded")
        entry = (record.artifact or {}).get(role)
        if not entry:
            raise ApiError(409, "not_ready", f"job {job_id} has no {role} (a dry run renders no video)", field="role")
        etag = f'"{entry["sha256"]}"'
        headers = {
            "ETag": etag,
            "Accept-Ranges": "bytes",
            "Cache-Control": f"private, max-age={CACHE_MAX_AGE_S}",
            "Content-Type": entry["contentType"],
            "Content-Disposition": f'inline; filename="{job_id}-{role}{os.path.splitext(entry["path"])[1]}"',
            "X-Content-Type-Options": "nosniff",
        }
        if _matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers={k: v for k, v in headers.items() if k != "Content-Type"})
        size = int(entry["size"])
        ranged: ByteRange | None = None
        if_range = request.headers.get("if-range")
        if if_range is None or if_range.strip() == etag:  # If-Range: a range of this very file, else all of it
            ranged = parse_range(request.headers.get("range"), size)
        try:
            raw, stored_size = await run_in_threadpool(_open_artifact, context.runtime.artifacts, entry["path"])
        except (ValueError, OSError) as error:
            logger.error("Artifact %s of job %s cannot be read: %s", role, job_id, error)
            raise ApiError(404, "artifact_missing", f"the {role} of job {job_id} is no longer stored") from None
        if stored_size != size:
            raw.close()
            raise RuntimeError(f"artifact {entry['path']} has {stored_size} bytes, its record says {size}")
        file = anyio.wrap_file(raw)
        if ranged is None:
            return FileSliceResponse(file, 0, size, status_code=200, headers=headers)
        headers["Content-Range"] = ranged.content_range(size)
        return FileSliceResponse(file, ranged.start, ranged.length, status_code=206, headers=headers)

    return JobRoute("/{jobId}/artifact", artifact, methods=["GET"], name="artifact")


def _open_artifact(artifacts: ArtifactStore, relative_path: str) -> tuple[BinaryIO, int]:
    """Open an artifact (never outside DATA_DIR: ``ArtifactStore.open`` refuses) and read its size."""
    file = open(artifacts.open(relative_path), "rb")  # closed by the response
    try:
        return file, os.fstat(file.fileno()).st_size
    except BaseException:
        file.close()
        raise


def _role_of(request: Request) -> str:
    roles = request.query_params.getlist("role")
    if not roles:
        return DOWNLOAD_ROLES[0]
    if len(roles) != 1 or roles[0] not in DOWNLOAD_ROLES:
        raise ApiError(400, "invalid_parameter", f"role must be one of {', '.join(DOWNLOAD_ROLES)}", field="role")
    return roles[0]


def _matches(if_none_match: str | None, etag: str) -> bool:
    """Weak comparison (RFC 9110 §13.1.2): ``*``, or any listed tag equal to ours with or without ``W/``."""
    if if_none_match is None:
        return False
    if if_none_match.strip() == "*":
        return True
    tags = (tag.strip() for tag in if_none_match.split(","))
    return any(tag.removeprefix("W/") == etag for tag in tags)
