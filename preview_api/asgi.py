"""The standalone server's app: ``uvicorn preview_api.asgi:app`` (or ``preview-worker serve``).

The API mounted at ``/api/preview`` and Prometheus metrics at ``/metrics``,
on the runtime configured from the environment. Importing this module builds
the app (that is its only purpose) and puts preview_actors' redacting filter
on uvicorn's loggers, so signed-URL signatures and tokens never reach its
access log, however uvicorn's logging is configured.
"""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.routing import Mount, Route

from preview_actors.redaction import RedactingFilter
from preview_actors.settings import Settings

from .app import create_app
from .context import Authorize
from .metrics import metrics_app

#: Where the standalone server mounts the API.
MOUNT_PATH = "/api/preview"
#: uvicorn's loggers: the access log carries full URLs, query strings included.
UVICORN_LOGGERS = ("uvicorn.access", "uvicorn.error")


def create_server_app(settings: Settings | None = None, *, authorize: Authorize | None = None) -> Starlette:
    return Starlette(
        routes=[
            Mount(MOUNT_PATH, app=create_app(settings, authorize=authorize), name="preview"),
            Route("/metrics", metrics_app(), name="metrics"),
        ]
    )


def redact_uvicorn_logs() -> None:
    """Put :class:`~preview_actors.redaction.RedactingFilter` on uvicorn's loggers (idempotent)."""
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, RedactingFilter) for existing in logger.filters):
            logger.addFilter(RedactingFilter())


redact_uvicorn_logs()
app = create_server_app()
