"""Which path reaches which endpoint: job routes that take only job ids, a JSON 404,
and a mount that answers its own path without the trailing slash.

- :class:`JobRoute`: ``/{jobId}…`` matches only a UUID-shaped ``jobId``, so
  ``/healthz`` is never also "a job named healthz" and a 405's ``Allow``
  lists the methods of the path asked for (``OPTIONS /healthz`` → ``GET, HEAD``).
- :class:`NotFound`: the sub-app's answer when no route matches, raised as an
  :class:`~preview_api.errors.ApiError` so it gets the JSON error body and
  ``X-Request-ID`` like every answer: ``job_not_found`` when the path and
  method are a job route's but the id is not a UUID, else ``not_found``.
- :class:`PreviewMount`: a ``Mount`` that also takes its bare path
  (``POST /api/preview`` as ``POST /api/preview/``) where a plain ``Mount``
  leaves the host's router to answer a bare 307 redirect.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketClose

from .errors import ApiError
from .jobs import is_job_id
from .jobs import not_found as job_not_found

#: The path parameter every job route names.
JOB_ID_PARAM = "jobId"


def route_path(scope: Scope) -> str:
    """The request path below the app's ``root_path`` (where it is mounted)."""
    path = str(scope["path"])
    root_path = str(scope.get("root_path", ""))
    if root_path and (path == root_path or path.startswith(root_path + "/")):
        return path[len(root_path):]
    return path


class JobRoute(Route):
    """A route whose ``{jobId}`` matches UUID-shaped ids only (any case)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE and not is_job_id(str(child_scope["path_params"][JOB_ID_PARAM])):
            return Match.NONE, {}
        return match, child_scope

    def job_id_asked(self, scope: Scope) -> str | None:
        """The raw ``jobId`` when the path and method are this route's whatever the id's shape, else None."""
        if scope["type"] != "http" or (self.methods and scope["method"] not in self.methods):
            return None
        found = self.path_regex.match(route_path(scope))
        return None if found is None else found.group(JOB_ID_PARAM)


class NotFound:
    """The sub-app router's default, for a path no route matches with any method.

    Given the router's routes (``scope["router"]`` is the outermost router, a
    host's when mounted).
    """

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # the API has none: closed, as Starlette does
            await WebSocketClose()(scope, receive, send)
            return
        for route in self.routes:
            if isinstance(route, JobRoute):
                job_id = route.job_id_asked(scope)
                if job_id is not None:
                    raise job_not_found(job_id)
        raise ApiError(404, "not_found", f"nothing at {route_path(scope) or '/'}")


class PreviewMount(Mount):
    """``Mount(path, app)`` that also serves ``path`` itself, as ``path + "/"``.

    For any ASGI app, in a Starlette or FastAPI host::

        routes=[PreviewMount("/api/preview", app=create_app())]     # Starlette
        app.routes.append(PreviewMount("/api/preview", app=create_app()))  # FastAPI

    ``POST /api/preview`` then submits like ``POST /api/preview/``; a plain
    ``Mount`` never sees the bare path, and the host answers it with a 307
    that many clients do not follow for a POST.
    """

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE or not self.path or scope["type"] not in ("http", "websocket"):
            return match, child_scope
        if route_path(scope) != self.path:
            return match, child_scope
        slashed: dict[str, Any] = {**scope, "path": scope["path"] + "/"}
        if isinstance(scope.get("raw_path"), bytes):
            slashed["raw_path"] = scope["raw_path"] + b"/"
        match, child_scope = super().matches(slashed)
        if match is Match.FULL:
            # The router applies the child scope to the request's: the app sees the path with its slash.
            child_scope["path"] = slashed["path"]
            if "raw_path" in slashed:
                child_scope["raw_path"] = slashed["raw_path"]
        return match, child_scope
