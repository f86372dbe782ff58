"""A Starlette backend that mounts the preview API beside its own routes.

    PREVIEW_BROKER_URL=redis://127.0.0.1:6379/0 PREVIEW_SIGNING_KEY=… \
        uvicorn examples.hosts.starlette_host:app

The API answers under /api/preview (POST /api/preview/ submits a job),
Prometheus metrics (the host's and preview-worker's) under /metrics.
"""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import preview_actors
from preview_actors import logs
from preview_actors.redaction import RedactingFilter
from preview_api import PreviewMount, create_app, metrics_app

# preview-worker's log lines in its format (PREVIEW_LOG_FORMAT: JSON by default, with the job
# context) and with secrets masked; uvicorn's own loggers print whole URLs, signed URLs'
# signatures included, so they get the masking filter too.
logs.install(preview_actors.current().settings.log_format)
for _name in ("uvicorn.access", "uvicorn.error"):
    logging.getLogger(_name).addFilter(RedactingFilter())


async def home(request: Request) -> Response:
    """The host's own route."""
    return JSONResponse({"service": "example-host", "previews": "/api/preview/"})


def allow_known_projects(request: Request, project_id: str) -> bool:
    """The host's access rule, asked before a job of ``project_id`` is submitted or shown."""
    return not project_id.startswith("blocked-")


app = Starlette(
    routes=[
        Route("/", home),
        # A Mount that also takes POST /api/preview, without the trailing slash.
        PreviewMount("/api/preview", app=create_app(authorize=allow_known_projects)),
        Route("/metrics", metrics_app()),
    ]
)
