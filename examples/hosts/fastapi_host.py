"""A FastAPI backend that mounts the preview API beside its own routes.

    PREVIEW_BROKER_URL=redis://127.0.0.1:6379/0 PREVIEW_SIGNING_KEY=… \
        uvicorn examples.hosts.fastapi_host:app

The API answers under /api/preview (POST /api/preview/ submits a job),
Prometheus metrics under /metrics. The sub-app keeps its own error format and
OpenAPI document (/api/preview/openapi.json); FastAPI's /docs shows the host's
routes only.
"""

from __future__ import annotations

from fastapi import FastAPI, Request

from preview_api import create_app, metrics_app


async def allow_known_projects(request: Request, project_id: str) -> bool:
    """The host's access rule (async works too): here, any project but the blocked ones."""
    return not project_id.startswith("blocked-")


app = FastAPI(title="example host")


@app.get("/hello")
async def hello() -> dict[str, str]:
    """The host's own route."""
    return {"service": "example-host", "previews": "/api/preview/"}


app.mount("/api/preview", create_app(authorize=allow_known_projects))
app.add_route("/metrics", metrics_app())
