"""Redis stopping under a running API: 503s naming the component, then recovery without a restart."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path
from typing import Iterator

import httpx
import pytest
import redis
from api_support import MOUNT, LiveServer, OpenApiChecker, checker  # noqa: F401 - fixtures
from conftest import IN_CI, chapter_request, make_settings, wait_until
from starlette.applications import Starlette
from starlette.routing import Mount

import preview_actors
from preview_api import create_app


class RedisServer:
    """A throw-away ``redis-server`` on a fixed port, without persistence, that can be stopped and started again."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            message = "redis-server is not installed"
            if IN_CI:
                pytest.fail(message)
            pytest.skip(message)
        self.process = subprocess.Popen(
            [executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory), "--logfile", str(self.directory / "redis.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        try:
            wait_until(lambda: self._answers(client), timeout_s=15, what=f"redis-server on port {self.port}")
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=15)

    def _answers(self, client: redis.Redis) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"redis-server exited: {(self.directory / 'redis.log').read_text()}")
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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
