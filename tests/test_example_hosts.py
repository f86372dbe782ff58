"""The example hosts log like preview-worker's own processes: JSON lines, secrets masked, access log included.

Run as their docstrings say (``uvicorn examples.hosts.…:app``), with a signing
key and a token set: a signed URL's signature must not reach uvicorn's access
log, and preview-worker's lines go through ``preview_actors.logs.install()``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from conftest import REPO, wait_until

pytestmark = pytest.mark.slow

HOSTS = ["starlette_host", "fastapi_host"]
#: What a signed URL's signature looks like (hex HMAC-SHA256); must never be logged.
SIGNATURE = "5f" * 32
SECRETS = {"PREVIEW_API_TOKEN": "host-token-123", "PREVIEW_SIGNING_KEY": "host-signing-key"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def host_env(tmp_path: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("PREVIEW_")}
    env.update(SECRETS, PREVIEW_BROKER_URL="stub://", DATA_DIR=str(tmp_path / "data"), PREVIEW_LOG_FORMAT="json")
    return env


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.parametrize("host", HOSTS)
def test_signed_url_signatures_stay_out_of_the_access_log(tmp_path: Path, host: str) -> None:
    # Given the host served by uvicorn as its docstring says
    port = free_port()
    log_path = tmp_path / "host.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", f"examples.hosts.{host}:app", "--port", str(port)],
            env=host_env(tmp_path), cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}/api/preview"
    try:
        wait_until(lambda: answers(f"{base}/healthz") or server.poll() is not None, timeout_s=60, what="the host to start")
        assert server.poll() is None, log_path.read_text()

        # When a signed artifact URL is requested
        query = f"role=video&expires=4102444800&signature={SIGNATURE}"
        answer = httpx.get(f"{base}/{uuid.uuid4()}/artifact?{query}", timeout=10)
        assert answer.status_code in (403, 404)
        wait_until(lambda: "/artifact" in log_path.read_text(), timeout_s=10, what="the access log line")
    finally:
        server.terminate()
        server.wait(timeout=30)

    # Then the access log has the request with its signature masked
    output = log_path.read_text()
    assert SIGNATURE not in output, output
    assert "signature=***" in output, output


@pytest.mark.parametrize("host", HOSTS)
def test_hosts_install_preview_workers_logging(tmp_path: Path, host: str) -> None:
    # Importing the host module sets up the root logger as logs.install() does: JSON, context, secrets masked
    code = (
        "import logging, json, importlib\n"
        f"importlib.import_module('examples.hosts.{host}')\n"
        "from preview_actors.logs import ContextFilter, JsonFormatter\n"
        "from preview_actors.redaction import RedactingFilter\n"
        "handlers = logging.getLogger().handlers\n"
        "access = logging.getLogger('uvicorn.access').filters\n"
        "print(json.dumps({\n"
        "    'json': bool(handlers) and all(isinstance(h.formatter, JsonFormatter) for h in handlers),\n"
        "    'context': bool(handlers) and all(any(isinstance(f, ContextFilter) for f in h.filters) for h in handlers),\n"
        "    'redacted': bool(handlers) and all(any(isinstance(f, RedactingFilter) for f in h.filters) for h in handlers),\n"
        "    'access_redacted': any(isinstance(f, RedactingFilter) for f in access),\n"
        "}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=host_env(tmp_path), cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == {
        "json": True, "context": True, "redacted": True, "access_redacted": True
    }
