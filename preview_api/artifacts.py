"""``GET /{jobId}/artifact?role=video|poster``: the file, served by Starlette's ``FileResponse``.

Checks, in order: a UUID-shaped id (404), a known role (400), credentials
(401/403, see :mod:`preview_api.auth`), the job (404), the host's
``authorize`` for bearer-token downloads (403), a succeeded job with that
artifact (409 ``not_ready``), the file below DATA_DIR (404
``artifact_missing``). Then ``If-None-Match`` (304, weak comparison).

Ranges and ``If-Range`` are :class:`starlette.responses.FileResponse`'s: one
range is a 206 with ``Content-Range``, several a 206
``multipart/byteranges``; ``If-Range`` (the ETag, or the ``Last-Modified``
date) guards them. Two things differ from a bare ``FileResponse``, decided
here with its own parser before it runs: an unsatisfiable range is this API's
JSON 416 (``range_not_satisfiable``, ``Content-Range: bytes */size``) rather
than plain text, and a malformed ``Range`` header is ignored — the whole file,
200, as RFC 9110 §14.2 allows — rather than a 400.

The ETag is the artifact's sha256, quoted (``FileResponse`` keeps an ETag it
is given). Artifacts are stored by content hash, so the file behind an ETag
never changes.
"""

from __future__ import annotations

import logging
import os
import stat
from email.utils import formatdate

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, MalformedRangeHeader, RangeNotSatisfiable, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from preview_actors.storage import ArtifactStore
from preview_actors.store import JobState

from .auth import Grant, check_download
from .context import ApiContext
from .errors import ApiError
from .jobs import job_id_of, load_job
from .routing import JobRoute
from .status import DOWNLOAD_ROLES

__all__ = ["CACHE_MAX_AGE_S", "CHUNK_BYTES", "artifact_route", "requested_ranges"]

logger = logging.getLogger(__name__)

#: Seconds a client may reuse a downloaded artifact without asking again.
CACHE_MAX_AGE_S = 3600
#: Bytes read from disk and sent per chunk (``FileResponse``'s own).
CHUNK_BYTES = FileResponse.chunk_size


def artifact_route(context: ApiContext) -> JobRoute:
    """The download route; its answers are described in the module docstring."""

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
            "Cache-Control": f"private, max-age={CACHE_MAX_AGE_S}",
            "Content-Type": entry["contentType"],
            "Content-Disposition": f'inline; filename="{job_id}-{role}{os.path.splitext(entry["path"])[1]}"',
            "X-Content-Type-Options": "nosniff",
        }
        if _matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers={k: v for k, v in headers.items() if k != "Content-Type"})
        try:
            path, stat_result = await run_in_threadpool(_stat_artifact, context.runtime.artifacts, entry["path"])
        except (ValueError, OSError) as error:
            logger.error("Artifact %s of job %s cannot be read: %s", role, job_id, error)
            raise ApiError(404, "artifact_missing", f"the {role} of job {job_id} is no longer stored") from None
        size = int(entry["size"])
        if stat_result.st_size != size:
            raise RuntimeError(f"artifact {entry['path']} has {stat_result.st_size} bytes, its record says {size}")
        headers["Last-Modified"] = formatdate(stat_result.st_mtime, usegmt=True)
        response = FileResponse(path, headers=headers, media_type=entry["contentType"], stat_result=stat_result)
        http_range = request.headers.get("range")
        if http_range is None or not _if_range_holds(request.headers.get("if-range"), headers):
            return response  # no range asked for, or one of another version of the file: all of it
        if requested_ranges(http_range, size) is None:
            return _WithoutRange(response)
        return response

    return JobRoute("/{jobId}/artifact", artifact, methods=["GET"], name="artifact")


def requested_ranges(header: str, size: int) -> list[tuple[int, int]] | None:
    """The byte ranges a ``Range`` header asks of a file of ``size`` bytes, as ``FileResponse`` reads them.

    Returns half-open ``(start, end)`` byte offsets, overlapping ones merged
    (``[]``: more than ``FileResponse.max_ranges``, so the whole file), or
    None when the header is malformed (then ignored: the whole file).

    Raises:
      ApiError: 416 ``range_not_satisfiable`` when a range starts at or past the end of the file.
    """
    try:
        return FileResponse._parse_range_header(header, size)
    except MalformedRangeHeader:
        return None
    except RangeNotSatisfiable:
        raise ApiError(
            416,
            "range_not_satisfiable",
            f"the range asked for lies outside the artifact ({size} bytes)",
            headers={"Content-Range": f"bytes */{size}"},
        ) from None


class _WithoutRange:
    """An ASGI app that runs ``app`` as if the request had no ``Range`` header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(name, value) for name, value in scope["headers"] if name != b"range"]
        await self.app({**scope, "headers": headers}, receive, send)


def _stat_artifact(artifacts: ArtifactStore, relative_path: str) -> tuple[str, os.stat_result]:
    """The artifact's path (never outside DATA_DIR: ``ArtifactStore.open`` refuses) and its ``stat``.

    Raises:
      ValueError: the path lies outside DATA_DIR.
      OSError: the file is gone, or is not a regular file.
    """
    path = str(artifacts.open(relative_path))
    stat_result = os.stat(path)
    if not stat.S_ISREG(stat_result.st_mode):
        raise IsADirectoryError(f"{path} is not a regular file")
    return path, stat_result


def _role_of(request: Request) -> str:
    roles = request.query_params.getlist("role")
    if not roles:
        return DOWNLOAD_ROLES[0]
    if len(roles) != 1 or roles[0] not in DOWNLOAD_ROLES:
        raise ApiError(400, "invalid_parameter", f"role must be one of {', '.join(DOWNLOAD_ROLES)}", field="role")
    return roles[0]


def _if_range_holds(if_range: str | None, headers: dict[str, str]) -> bool:
    """``If-Range`` as ``FileResponse`` reads it: absent, or equal to our strong ETag or ``Last-Modified``."""
    if if_range is None:
        return True
    return not if_range.startswith("W/") and if_range in (headers["ETag"], headers["Last-Modified"])


def _matches(if_none_match: str | None, etag: str) -> bool:
    """Weak comparison (RFC 9110 §13.1.2): ``*``, or any listed tag equal to ours with or without ``W/``."""
    if if_none_match is None:
        return False
    if if_none_match.strip() == "*":
        return True
    tags = (tag.strip() for tag in if_none_match.split(","))
    return any(tag.removeprefix("W/") == etag for tag in tags)
