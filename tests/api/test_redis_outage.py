"""Redis stopping under a running API: 503s naming the component, then recovery without a restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_support import MOUNT, LiveServer, OpenApiChecker, checker  # noqa: F401 - fixtures
from conftest import chapter_request, make_settings, wait_until
from redis_server import RedisServer
from starlette.applications import Starlette
from starlette.routing import Mount

import preview_actors
from preview_api import create_app


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def test_submissions_fail_503_while_redis_is_down_and_recover_after(
    redis_server: RedisServer, tmp_path: Path, checker: OpenApiChecker
) -> None:
    preview_actors.setup(make_settings(tmp_path, redis_server.url))
    try:
        host = Starlette(routes=[Mount(MOUNT, app=create_app())])
        with LiveServer(host) as server, httpx.Client(
            base_url=server.url + MOUNT, event_hooks={"response": [checker]}, timeout=30
        ) as client:
            # Given a working API on its own Redis
            assert client.post("/", json=chapter_request(steps=1)).status_code == 202
            assert client.get("/readyz").status_code == 200

            # When Redis goes away
            redis_server.stop()

            # Then submissions are 503 with a JSON error, and readiness names what is down
            down = client.post("/", json=chapter_request(steps=2))
            assert down.status_code == 503
            assert down.json()["error"]["code"] == "unavailable"
            assert int(down.headers["retry-after"]) > 0
            readiness = client.get("/readyz")
            assert readiness.status_code == 503
            body = readiness.json()
            assert body["checks"]["broker"]["status"] == body["checks"]["store"]["status"] == "unavailable"
            assert body["checks"]["broker"]["reason"].startswith("broker: ")
            assert body["checks"]["store"]["reason"].startswith("store: ")
            assert "broker: " in body["error"]["message"] and "store: " in body["error"]["message"]
            assert client.get("/healthz").status_code == 200  # alive all the same

            # When Redis is back on the same port (empty: no persistence)
            redis_server.start()

            # Then submissions succeed again without restarting the API
            recovered = wait_until(
                lambda: (answer := client.post("/", json=chapter_request(steps=3))).status_code == 202 and answer,
                timeout_s=20,
                what="a submission to succeed after Redis came back",
            )
            job_id = recovered.json()["jobId"]
            assert client.get(f"/{job_id}/status").json()["state"] == "queued"
            assert client.get("/readyz").status_code == 200
    finally:
        preview_actors.setup(make_settings(tmp_path, "stub://"))
