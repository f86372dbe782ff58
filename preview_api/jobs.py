"""Finding the job a path names: only UUID-shaped ids ever reach the store (or the filesystem)."""

from __future__ import annotations

import re

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from preview_actors.runtime import Runtime
from preview_actors.store import JobRecord

from .errors import ApiError

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def is_job_id(text: str) -> bool:
    """Whether ``text`` has the shape of a job id (a UUID, any case)."""
    return _UUID.fullmatch(text) is not None


def job_id_of(request: Request) -> str:
    """The path's ``jobId``, lowercased as the store keeps it; 404 when it is not a UUID."""
    raw = str(request.path_params.get("jobId", ""))
    if not is_job_id(raw):
        raise not_found(raw)
    return raw.lower()


async def load_job(runtime: Runtime, job_id: str) -> JobRecord:
    record = await run_in_threadpool(runtime.store.get, job_id)
    if record is None:
        raise not_found(job_id)
    return record


def not_found(job_id: str) -> ApiError:
    return ApiError(404, "job_not_found", f"no job {job_id}")
