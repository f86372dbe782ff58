"""The start-up check of Redis durability, against real Redis servers configured each way."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from conftest import wait_until

from preview_actors.redis_readiness import durability_warnings, warn_if_unsafe


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[Callable[..., redis.Redis]]:
    """Start a private redis-server with the given settings on a free port."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    started: list[tuple[subprocess.Popen[bytes], redis.Redis]] = []

    def start(*options: str) -> redis.Redis:
        port = free_port()
        directory = tmp_path / f"redis-{port}"
        directory.mkdir()
        process = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory), *options],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis(port=port)
        wait_until(lambda: _pings(client), timeout_s=10, what="redis-server to start")
        started.append((process, client))
        return client

    yield start
    for process, client in started:
        client.close()
        process.terminate()
        process.wait(timeout=10)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def test_production_settings_give_no_warning(redis_server) -> None:
    client = redis_server("--appendonly", "yes", "--maxmemory-policy", "noeviction")
    assert durability_warnings(client) == []


def test_an_evicting_redis_without_persistence_is_reported(redis_server, caplog: pytest.LogCaptureFixture) -> None:
    client = redis_server("--appendonly", "no", "--save", "", "--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lru")

    warnings = warn_if_unsafe(client, component="broker")

    assert len(warnings) == 2
    assert "allkeys-lru" in warnings[0] and "noeviction" in warnings[0]
    assert "persists nothing" in warnings[1]
    assert caplog.text.count("The broker Redis is not safe for production") == 2


def test_rdb_only_is_reported_as_losing_recent_jobs(redis_server) -> None:
    client = redis_server("--appendonly", "no", "--save", "3600 1", "--maxmemory-policy", "noeviction")
    [warning] = durability_warnings(client)
    assert "since the last RDB snapshot" in warning


def test_forbidden_config_command_is_reported_not_raised(redis_server) -> None:
    client = redis_server("--rename-command", "CONFIG", "")
    [warning] = durability_warnings(client)
    assert "could not read the Redis configuration" in warning


def test_unreachable_redis_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    assert warn_if_unsafe(redis.Redis(port=1, socket_connect_timeout=1), component="job store") == []
    assert "Could not check the job store Redis" in caplog.text
