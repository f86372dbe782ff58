"""``preview-worker smoke`` against a locally started API and worker: passes, then fails clearly without the worker."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from conftest import REPO, wait_until
from workers import WorkerProcess, worker_env

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def smoke(url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "preview_worker", "smoke", "--url", url, "--token", "smoke-token", *extra],
        capture_output=True, text=True, timeout=180, cwd=REPO,
    )


def test_smoke_passes_with_a_worker_and_fails_clearly_without(runtime_factory, tmp_path: Path) -> None:
    runtime = runtime_factory("sqlite")
    secrets = {"PREVIEW_API_TOKEN": "smoke-token", "PREVIEW_SIGNING_KEY": "smoke-key", "PREVIEW_METRICS_PORT": "0"}
    port = free_port()
    url = f"http://127.0.0.1:{port}/api/preview"
    with open(tmp_path / "api.log", "wb") as api_log:
        api = subprocess.Popen(
            [sys.executable, "-m", "preview_worker", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=worker_env(runtime, **secrets), cwd=REPO, stdout=api_log, stderr=subprocess.STDOUT,
        )
    worker = WorkerProcess(runtime, tmp_path / "worker.log", **secrets)
    try:
        wait_until(lambda: answers(f"{url}/healthz"), timeout_s=60, what="the API to start")
        worker.wait_ready()

        passed = smoke(url)
        assert passed.returncode == 0, passed.stdout + passed.stderr
        assert "smoke test passed" in passed.stdout
        assert "sha256 verified" in passed.stdout

        assert worker.terminate() == 0
        failed = smoke(url, "--timeout", "3")
        assert failed.returncode == 1
        assert "still 'queued'" in failed.stdout and "are workers running" in failed.stdout

    finally:
        worker.close()
        api.terminate()
        api.wait(timeout=30)
