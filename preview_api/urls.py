"""Absolute URLs below the mount point, from the request's own scheme and host.

The host part comes from the request (``Host`` header); a deployment behind a
proxy runs uvicorn with ``--proxy-headers`` and the host app with Starlette's
``TrustedHostMiddleware`` so neither can be forged.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from starlette.datastructures import URL
from starlette.requests import Request


def mount_root(request: Request) -> str:
    """The path the sub-app is mounted at (``/api/preview``), or ``""`` at the root."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def absolute_url(request: Request, path: str, query: dict[str, str] | None = None) -> str:
    """``scheme://host/<mount>/<path>?<query>``; ``path`` starts with ``/`` and is relative to the mount."""
    base = URL(scope={**request.scope, "path": "/", "query_string": b""})
    return str(base.replace(path=quote(mount_root(request) + path), query=urlencode(query or {}), fragment=""))
