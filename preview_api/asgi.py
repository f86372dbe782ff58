"""The standalone server's app: ``uvicorn preview_api.asgi:app`` (or ``preview-worker serve``).

The API mounted at ``/api/preview`` (``POST /api/preview`` too, without the
slash) and Prometheus metrics at ``/metrics``, on the runtime configured from
the environment. With ``PREVIEW_API_TOKEN`` set, submit, status and cancel
need ``Authorization: Bearer`` with it, as downloads do (signed URLs need no
token); ``/healthz``, ``/readyz``, ``/openapi.json`` and ``/metrics`` stay
open. Every answer, a 404 outside the API too, carries ``X-Request-ID`` and
errors have the API's JSON body.

Importing this module builds the app (that is its only purpose) and puts
preview_actors' redacting filter on uvicorn's loggers, so signed-URL
signatures and tokens never reach its access log, however uvicorn's logging
is configured.
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.routing import Route

import preview_actors
from preview_actors.redaction import RedactingFilter
from preview_actors.settings import Settings

from .app import PreviewApp, create_app
from .context import Authorize
from .errors import handle_http_exception, handle_unexpected
from .metrics import metrics_app
from .routing import PreviewMount

#: Where the standalone server mounts the API.
MOUNT_PATH = "/api/preview"
#: uvicorn's loggers: the access log carries full URLs, query strings included.
UVICORN_LOGGERS = ("uvicorn.access", "uvicorn.error")


def create_server_app(settings: Settings | None = None, *, authorize: Authorize | None = None) -> PreviewApp:
    """The standalone server: the API at :data:`MOUNT_PATH`, ``/metrics`` beside it.

    ``settings=None`` uses the runtime set up from the environment. The job
    routes require ``PREVIEW_API_TOKEN`` when it is set (``authorize``, if
    given, is asked as well).
    """
    api_token = (preview_actors.current().settings if settings is None else settings).api_token
    api = create_app(settings, authorize=authorize, require_token=api_token is not None)
    return PreviewApp(
        routes=[
            PreviewMount(MOUNT_PATH, app=api, name="preview"),
            Route("/metrics", metrics_app(), name="metrics"),
        ],
        exception_handlers={HTTPException: handle_http_exception, Exception: handle_unexpected},
    )


def redact_uvicorn_logs() -> None:
    """Put :class:`~preview_actors.redaction.RedactingFilter` on uvicorn's loggers (idempotent)."""
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, RedactingFilter) for existing in logger.filters):
            logger.addFilter(RedactingFilter())


redact_uvicorn_logs()
app = create_server_app()
