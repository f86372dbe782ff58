"""A FastAPI backend that mounts the preview API beside its own routes.

    PREVIEW_BROKER_URL=redis://127.0.0.1:6379/0 PREVIEW_SIGNING_KEY=… \
        uvicorn examples.hosts.fastapi_host:app

The API answers under /api/preview (POST /api/preview/ submits a job),
Prometheus metrics under /metrics. The sub-app keeps its own error format and
OpenAPI document (/api/preview/openapi.json); FastAPI's /docs shows the host's
routes only.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request

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


async def allow_known_projects(request: Request, project_id: str) -> bool:
    """The host's access rule (async works too): here, any project but the blocked ones."""
    return not project_id.startswith("blocked-")


app = FastAPI(title="example host")


@app.get("/hello")
async def hello() -> dict[str, str]:
    """The host's own route."""
    return {"service": "example-host", "previews": "/api/preview/"}


# PreviewMount rather than app.mount: POST /api/preview (no trailing slash) submits too.
app.routes.append(PreviewMount("/api/preview", app=create_app(authorize=allow_known_projects)))
app.add_route("/metrics", metrics_app())
