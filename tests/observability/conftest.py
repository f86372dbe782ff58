"""Fixtures for observability tests: a private Redis, a runtime on it, real worker processes.

The worker tests use a Redis server of their own (a free port, no
persistence) rather than the shared one, so another test session flushing
the shared database cannot take their jobs away.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Callable, Iterator

import pytest

import preview_actors
from conftest import IN_CI, make_settings, server_reachable, wait_until
from preview_actors.runtime import Runtime

from .support import free_port


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Start a private ``redis-server``; returns its URL (with the password, if one is asked for)."""
    binary = shutil.which("redis-server")
    if binary is None:
        if IN_CI:
            pytest.fail("redis-server is not installed (CI must run every broker)")
        pytest.skip("redis-server is not installed")
    servers: list[subprocess.Popen[bytes]] = []

    def start(password: str | None = None) -> str:
        port = free_port()
        directory = tmp_path / f"redis-{port}"
        directory.mkdir()
        command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(directory)]
        if password:
            command += ["--requirepass", password]
        servers.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_until(lambda: server_reachable("127.0.0.1", port), timeout_s=10, what=f"redis-server on port {port}")
        return f"redis://:{password}@127.0.0.1:{port}/0" if password else f"redis://127.0.0.1:{port}/0"

    yield start
    for server in servers:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def redis_runtime(tmp_path: Path, redis_server: Callable[..., str]) -> Iterator[Callable[..., Runtime]]:
    """Set preview_actors up on a private Redis (``password=`` to require one); the stub again on leaving."""

    def make(*, password: str | None = None, **overrides: object) -> Runtime:
        return preview_actors.setup(make_settings(tmp_path, redis_server(password), **overrides))

    yield make
    preview_actors.setup(make_settings(tmp_path, "stub://"))

