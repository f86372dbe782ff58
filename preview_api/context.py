"""What every endpoint of one app needs: the runtime and the host's ``authorize`` hook.

``authorize(request, project_id)`` lets the host apply its own access rules.
It may be a plain function (run in the threadpool, so it may block on a
database) or a coroutine function, and returns whether the caller may act
on that project. It is called

- for ``POST /``, after the body is validated, with the body's ``projectId``
  (an invalid body is answered 4xx without asking);
- for ``GET /{jobId}/status``, with the job's ``projectId`` (unknown jobs are
  404 first);
- for ``GET /{jobId}/artifact`` with a bearer token, with the job's
  ``projectId``. A valid signed URL is a grant in itself (it was handed out by
  an authorized status call) and does not ask again.

A false answer is 403 ``forbidden``; an exception is a 500.

``require_token`` (the standalone server with ``PREVIEW_API_TOKEN`` set)
makes submit, status and cancel ask for the bearer token first, before the
body is read or the job looked up (see :mod:`preview_api.auth`).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from preview_actors.runtime import Runtime

from .auth import check_bearer
from .errors import ApiError

#: The host's access rule: ``(request, project_id) -> bool``, sync or async.
Authorize = Callable[[Request, str], bool | Awaitable[bool]]


@attrs.frozen
class ApiContext:
    runtime: Runtime
    authorize: Authorize | None = None
    #: Whether the job routes need ``Authorization: Bearer PREVIEW_API_TOKEN``.
    require_token: bool = False

    def require_caller(self, request: Request) -> None:
        """401/403 unless the request carries the bearer token, when the app requires it."""
        if self.require_token:
            check_bearer(request, self.runtime.settings.api_token)

    async def require_authorized(self, request: Request, project_id: str) -> None:
        """403 unless the host's ``authorize`` (if any) allows ``project_id``."""
        if self.authorize is None:
            return
        answer: Any
        if _is_async(self.authorize):
            answer = await self.authorize(request, project_id)  # type: ignore[misc]  # _is_async: it returns an awaitable
        else:
            answer = await run_in_threadpool(self.authorize, request, project_id)
            if inspect.isawaitable(answer):
                answer = await answer
        if not answer:
            raise ApiError(403, "forbidden", f"not allowed to access project {project_id!r}")


def _is_async(function: Callable[..., Any]) -> bool:
    """A coroutine function, or an object whose ``__call__`` is one."""
    return inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(type(function).__call__)
