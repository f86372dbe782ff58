"""The sub-app in hosts: the example Starlette and FastAPI hosts, preview_api.asgi, and `preview-worker serve`."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from api_support import OpenApiChecker, checked_client, checker  # noqa: F401 - fixtures
from conftest import REPO, chapter_request, wait_until

import preview_actors
from preview_actors import redaction
from preview_actors.runtime import Runtime
from preview_api import create_app, signing


def load_host(name: str) -> ModuleType:
    path = REPO / "examples" / "hosts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"example_host_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("host", "own_route"), [("starlette_host", "/"), ("fastapi_host", "/hello")])
def test_example_hosts_serve_their_route_the_api_and_metrics(
    host: str, own_route: str, runtime_factory: Callable[..., Runtime], checker: OpenApiChecker
) -> None:
    runtime_factory("stub")
    module = load_host(host)  # builds its app on the runtime just set up

    with checked_client(module.app, checker) as client:
        own = client.get(own_route)
        submitted = client.post("/api/preview/", json=chapter_request())
        blocked = client.post("/api/preview/", json=chapter_request(project="blocked-1"))
        status = client.get(submitted.json()["statusUrl"])
        metrics = client.get("/metrics")

    assert own.status_code == 200 and own.json()["service"] == "example-host"
    assert submitted.status_code == 202
    assert submitted.json()["statusUrl"].startswith("http://testserver/api/preview/")
    assert blocked.status_code == 403  # the host's authorize rule
    assert status.status_code == 200 and status.json()["state"] == "queued"
    assert metrics.status_code == 200
    assert "preview_jobs_submitted_total" in metrics.text
    assert 'preview_jobs_rejected_total{reason="forbidden"}' in metrics.text


def test_standalone_app_mounts_the_api_and_metrics(runtime_factory: Callable[..., Runtime], checker: OpenApiChecker) -> None:
    runtime_factory("stub")
    import preview_api.asgi

    asgi = importlib.reload(preview_api.asgi)  # its app is built at import, on the runtime current then

    with checked_client(asgi.app, checker) as client:
        assert client.get("/api/preview/healthz").json() == {"status": "ok"}
        assert client.get("/api/preview/openapi.json").json()["servers"] == [{"url": "http://testserver/api/preview"}]
        metrics = client.get("/metrics", follow_redirects=False)
    assert metrics.status_code == 200 and "preview_queue_depth" in metrics.text
    # `uvicorn preview_api.asgi:app` keeps secrets out of the access log whatever its log config
    access_filters = logging.getLogger("uvicorn.access").filters
    assert any(isinstance(f, redaction.RedactingFilter) for f in access_filters)


def test_create_app_with_settings_sets_the_runtime_up(runtime_factory: Callable[..., Runtime]) -> None:
    # Given a runtime, when an app is created with settings, then it sets up a runtime of its own and keeps it
    stub = runtime_factory("stub")
    app = create_app(stub.settings)
    assert app.state.runtime is preview_actors.current()
    assert app.state.runtime is not stub
    assert app.state.runtime.settings == stub.settings


def test_metrics_app_reads_the_multiprocess_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from prometheus_client import REGISTRY

    from preview_api import metrics_app

    assert metrics_app().registry is REGISTRY
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    assert metrics_app().registry is not REGISTRY


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_command_runs_the_api_with_a_redacted_access_log(tmp_path: Path) -> None:
    port = _free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("PREVIEW_")}
    env.update(
        PREVIEW_BROKER_URL="stub://",
        DATA_DIR=str(tmp_path / "data"),
        PREVIEW_SIGNING_KEY="serve-key",
        PREVIEW_LOG_FORMAT="json",
        PYTHONUNBUFFERED="1",
    )
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "preview_worker", "serve", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:

        def answers() -> Any:
            if process.poll() is not None:
                raise AssertionError(f"serve exited with {process.returncode}:\n{log_path.read_text()}")
            try:
                return httpx.get(f"{base}/api/preview/healthz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(answers, timeout_s=30, what="preview-worker serve to answer")
        secret = signing.signature("serve-key", "00000000-0000-4000-8000-000000000000", "video", int(time.time()) + 60)
        missing = httpx.get(
            f"{base}/api/preview/00000000-0000-4000-8000-000000000000/artifact",
            params={"role": "video", "expires": str(int(time.time()) + 60), "signature": secret},
        )
        metrics = httpx.get(f"{base}/metrics")
    finally:
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=30)

    assert missing.status_code == 404  # signed correctly, but no such job
    assert metrics.status_code == 200 and "preview_jobs_submitted_total" in metrics.text
    output = log_path.read_text()
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status tells how it ended
    assert exit_code in (0, -signal.SIGTERM), output
    assert "Finished server process" in output
    assert f"signature={redaction.MASK}" in output
    assert secret not in output
    assert '"level": "info"' in output  # preview_actors' JSON log format


def test_serve_refuses_a_bad_port() -> None:
    answer = subprocess.run(
        [sys.executable, "-m", "preview_worker", "serve", "--port", "70000"],
        cwd=REPO,
        env={**os.environ, "PREVIEW_BROKER_URL": "stub://"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert answer.returncode == 2
    assert "port must be 0..65535" in answer.stderr

