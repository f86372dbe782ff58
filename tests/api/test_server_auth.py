"""The standalone server with PREVIEW_API_TOKEN set: every job route needs the bearer token.

A host that mounts the sub-app keeps deciding with ``authorize``; signed
artifact URLs work without the token; health, readiness and the document stay open.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_support import MOUNT, OpenApiChecker, checked_client, checker, store_succeeded_job  # noqa: F401 - fixtures
from conftest import chapter_request

from preview_actors.runtime import Runtime
from preview_actors.store import JobState
from preview_api import create_app

TOKEN = "server-token-0123456789"
KEY = "server-signing-key"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def server(runtime_factory: Callable[..., Runtime], checker: OpenApiChecker) -> Any:
    runtime = runtime_factory("stub", api_token=TOKEN, signing_key=KEY)
    import preview_api.asgi

    app = importlib.reload(preview_api.asgi).app  # `uvicorn preview_api.asgi:app`, on that runtime
    with checked_client(app, checker) as client:
        yield runtime, client


def job_routes(job_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        ("POST", MOUNT + "/", {"json": chapter_request()}),
        ("POST", MOUNT, {"json": chapter_request()}),
        ("GET", f"{MOUNT}/{job_id}/status", {}),
        ("DELETE", f"{MOUNT}/{job_id}", {}),
        ("GET", f"{MOUNT}/{job_id}/artifact", {}),
    ]


def test_every_job_route_needs_the_token(server: Any, tmp_path: Path) -> None:
    runtime, client = server
    job_id = store_succeeded_job(runtime, tmp_path, b"video")
    wrong = []
    for method, path, options in job_routes(job_id):
        missing = client.request(method, path, **options)
        other_scheme = client.request(method, path, headers={"Authorization": f"Basic {TOKEN}"}, **options)
        bad = client.request(method, path, headers={"Authorization": "Bearer not-the-token"}, **options)
        expected = ((missing, 401, "unauthorized"), (other_scheme, 401, "unauthorized"), (bad, 403, "invalid_token"))
        for answer, status, code in expected:
            if answer.status_code != status or answer.json()["error"]["code"] != code:
                wrong.append(f"{method} {path}: {answer.status_code} {answer.text[:120]}, expected {status} {code}")
        if not missing.headers.get("www-authenticate", "").startswith("Bearer "):
            wrong.append(f"{method} {path}: no Bearer challenge on the 401")
    assert not wrong, "\n".join(wrong)
    # Nothing was submitted or cancelled without the token.
    assert runtime.store.count_unfinished() == 0
    assert runtime.store.get(job_id).state is JobState.SUCCEEDED


def test_the_token_is_checked_before_the_body_or_the_job(server: Any) -> None:
    _, client = server
    invalid = client.post(MOUNT + "/", json={"projectId": 7})
    not_json = client.post(MOUNT + "/", content=b"x", headers={"Content-Type": "text/plain"})
    unknown = client.get(f"{MOUNT}/{uuid.uuid4()}/status")

    # A caller without the token learns nothing: not what is wrong with a body, not which jobs exist.
    assert [answer.status_code for answer in (invalid, not_json, unknown)] == [401, 401, 401]


def test_with_the_token_the_job_routes_work(server: Any, tmp_path: Path) -> None:
    runtime, client = server

    submitted = client.post(MOUNT, json=chapter_request(), headers=BEARER)
    job_id = submitted.json()["jobId"]
    status = client.get(submitted.json()["statusUrl"], headers=BEARER)
    cancelled = client.delete(f"{MOUNT}/{job_id}", headers=BEARER)
    done = store_succeeded_job(runtime, tmp_path, b"the video")
    download = client.get(f"{MOUNT}/{done}/artifact", headers=BEARER)

    assert submitted.status_code == 202
    assert status.status_code == 200 and status.json()["state"] == "queued"
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert download.status_code == 200 and download.content == b"the video"


def test_signed_urls_need_no_token(server: Any, tmp_path: Path) -> None:
    runtime, client = server
    job_id = store_succeeded_job(runtime, tmp_path, b"signed video")
    url = client.get(f"{MOUNT}/{job_id}/status", headers=BEARER).json()["artifact"]["video"]["url"]

    answer = client.get(url)  # no Authorization header

    assert answer.status_code == 200 and answer.content == b"signed video"
    tampered = client.get(url.replace("signature=", "signature=0"))
    assert tampered.status_code == 403


def test_health_readiness_and_the_document_stay_open(server: Any) -> None:
    _, client = server
    for path in ("/healthz", "/readyz", "/openapi.json"):
        assert client.get(MOUNT + path).status_code == 200, path
    assert client.get("/metrics").status_code == 200
    # The served document says the job routes need the token.
    document = client.get(MOUNT + "/openapi.json").json()
    for path, method in (("/", "post"), ("/{jobId}/status", "get"), ("/{jobId}", "delete")):
        assert document["paths"][path][method]["security"] == [{"bearerToken": []}], (path, method)


def test_a_host_keeps_deciding_with_authorize(runtime_factory: Callable[..., Runtime], checker: OpenApiChecker) -> None:
    # Given PREVIEW_API_TOKEN set and the sub-app mounted by a host with its own rule
    runtime_factory("stub", api_token=TOKEN, signing_key=KEY)
    from starlette.applications import Starlette
    from starlette.routing import Mount

    host = Starlette(routes=[Mount(MOUNT, app=create_app(authorize=lambda request, project: project != "closed"))])
    with checked_client(host, checker) as client:
        # When it submits without the token, then the host's rule alone decides
        opened = client.post(MOUNT + "/", json=chapter_request())
        closed = client.post(MOUNT + "/", json=chapter_request(project="closed"))
        status = client.get(opened.json()["statusUrl"])

    assert opened.status_code == 202
    assert closed.status_code == 403 and closed.json()["error"]["code"] == "forbidden"
    assert status.status_code == 200


def test_the_serve_command_requires_the_token(runtime_factory: Callable[..., Runtime]) -> None:
    # The same app over real HTTP, as `preview-worker serve` runs it.
    from api_support import LiveServer

    from preview_api.asgi import create_server_app

    runtime_factory("stub", api_token=TOKEN, signing_key=KEY)
    with LiveServer(create_server_app()) as live:
        refused = httpx.post(live.url + MOUNT + "/", json=chapter_request(), timeout=10)
        accepted = httpx.post(live.url + MOUNT + "/", json=chapter_request(), headers=BEARER, timeout=10)

    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
    assert accepted.status_code == 202

