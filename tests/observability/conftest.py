"""Fixtures for observability tests: a private Redis, a runtime on it, real worker processes.

The worker tests use a Redis server of their own (a free port, no
persistence) rather than the shared one, so another test session flushing
the shared database cannot take their jobs away.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import make_settings
from redis_server import RedisServer

import preview_actors
from preview_actors.runtime import Runtime


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Start a private ``redis-server``; returns its URL (with the password, if one is asked for)."""
    servers: list[RedisServer] = []

    def start(password: str | None = None) -> str:
        directory = tmp_path / f"redis-{len(servers)}"
        directory.mkdir()
        server = RedisServer(directory, password=password)
        servers.append(server)
        server.start()
        return server.url

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def redis_runtime(tmp_path: Path, redis_server: Callable[..., str]) -> Iterator[Callable[..., Runtime]]:
    """Set preview_actors up on a private Redis (``password=`` to require one); the stub again on leaving."""

    def make(*, password: str | None = None, **overrides: object) -> Runtime:
        return preview_actors.setup(make_settings(tmp_path, redis_server(password), **overrides))

    yield make
    preview_actors.setup(make_settings(tmp_path, "stub://"))

