"""``preview-worker smoke`` against a locally started API and worker.

It passes with a worker and the right token; it fails, with one ``FAIL`` line,
without a worker, with a wrong or a missing token (even though the signed URL
alone would download the video), and it checks the signed URL too.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from conftest import REPO, wait_until
from workers import WorkerProcess, worker_env

from preview_actors.runtime import Runtime

pytestmark = pytest.mark.slow

TOKEN = "smoke-token"
SIGNING_KEY = "smoke-key"
SECRETS = {"PREVIEW_API_TOKEN": TOKEN, "PREVIEW_SIGNING_KEY": SIGNING_KEY, "PREVIEW_METRICS_PORT": "0"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def smoke(url: str, *extra: str, token: str | None = TOKEN) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if name != "PREVIEW_API_TOKEN"}
    token_args = ["--token", token] if token is not None else []
    return subprocess.run(
        [sys.executable, "-m", "preview_worker", "smoke", "--url", url, *token_args, *extra],
        capture_output=True, text=True, timeout=180, cwd=REPO, env=env,
    )


def start_worker(runtime: Runtime, log_path: Path) -> WorkerProcess:
    return WorkerProcess(
        runtime, log_path, PREVIEW_API_TOKEN=TOKEN, PREVIEW_SIGNING_KEY=SIGNING_KEY, PREVIEW_METRICS_PORT="0"
    )


def fail_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith("FAIL ")]


@contextlib.contextmanager
def api_server(runtime: Runtime, argv: list[str], log_path: Path) -> Iterator[str]:
    """Run an API server (``argv`` with ``{port}`` filled in) on the runtime's settings; yield its API URL."""
    port = free_port()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, *(part.format(port=port) for part in argv)],
            env=worker_env(runtime, **SECRETS), cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/api/preview"
    try:
        wait_until(lambda: answers(f"{url}/healthz") or process.poll() is not None, timeout_s=60, what="the API to start")
        assert process.poll() is None, log_path.read_text()
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_smoke_passes_with_a_worker_and_fails_clearly_without(runtime_factory: Callable[..., Runtime], tmp_path: Path) -> None:
    runtime = runtime_factory("sqlite")
    serve = ["-m", "preview_worker", "serve", "--host", "127.0.0.1", "--port", "{port}"]
    worker = start_worker(runtime, tmp_path / "worker.log")
    try:
        with api_server(runtime, serve, tmp_path / "api.log") as url:
            worker.wait_ready()

            passed = smoke(url)
            assert passed.returncode == 0, passed.stdout + passed.stderr
            lines = passed.stdout.splitlines()
            assert lines[0] == "ok   readyz"
            assert "ok   video downloaded with the token: " in passed.stdout
            assert "ok   video downloaded with its signed URL: " in passed.stdout
            assert lines[-1] == "smoke test passed"

            assert worker.terminate() == 0
            failed = smoke(url, "--timeout", "3")
            assert failed.returncode == 1
            assert len(fail_lines(failed)) == 1
            assert "still 'queued'" in failed.stdout and "are workers running" in failed.stdout
    finally:
        worker.close()


def test_smoke_checks_the_token_it_was_given(runtime_factory: Callable[..., Runtime], tmp_path: Path) -> None:
    # Given a host that lets anyone submit (its authorize rule) and needs the token only for
    # downloads, with a signing key set, so that the status's signed URL downloads without a token
    runtime = runtime_factory("sqlite")
    host = ["-m", "uvicorn", "examples.hosts.starlette_host:app", "--host", "127.0.0.1", "--port", "{port}"]
    worker = start_worker(runtime, tmp_path / "worker.log")
    try:
        with api_server(runtime, host, tmp_path / "host.log") as url:
            worker.wait_ready()

            # When smoke is given the right token, it passes
            passed = smoke(url)
            assert passed.returncode == 0, passed.stdout + passed.stderr

            # When it is given a wrong one, it fails on the download, naming the token
            wrong = smoke(url, token="not-the-token")
            assert wrong.returncode == 1, wrong.stdout + wrong.stderr
            assert len(fail_lines(wrong)) == 1
            assert "downloading the video with the token answered 403" in wrong.stdout
            assert "smoke test passed" not in wrong.stdout

            # When it is given none, it refuses to pass, saying how to give one
            missing = smoke(url, token=None)
            assert missing.returncode == 2, missing.stdout + missing.stderr
            assert len(fail_lines(missing)) == 1 and "--token" in fail_lines(missing)[0]

            # Unless told the API has no token: then the signed URL alone is checked
            signed_only = smoke(url, "--no-token", token=None)
            assert signed_only.returncode == 0, signed_only.stdout + signed_only.stderr
            assert "with the token" not in signed_only.stdout
            assert "ok   video downloaded with its signed URL: " in signed_only.stdout
    finally:
        worker.close()
