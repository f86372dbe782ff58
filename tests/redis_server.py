"""A private ``redis-server`` for tests that stop, restart or configure Redis."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from conftest import IN_CI, wait_until


class RedisServer:
    """A throw-away ``redis-server`` on a fixed free port that can be stopped and started again.

    Without ``appendonly`` it keeps nothing; with it, every write is fsynced to
    the append-only file in ``directory`` before Redis answers, so a restart
    (graceful or SIGKILL) brings back everything it acknowledged.
    """

    def __init__(self, directory: Path, *, appendonly: bool = False, password: str | None = None) -> None:
        self.directory = directory
        self.appendonly = appendonly
        self.password = password
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        credentials = f":{self.password}@" if self.password else ""
        return f"redis://{credentials}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            message = "redis-server is not installed"
            if IN_CI:
                pytest.fail(message)
            pytest.skip(message)
        options = ["--appendonly", "yes", "--appendfsync", "always"] if self.appendonly else ["--appendonly", "no"]
        if self.password:
            options += ["--requirepass", self.password]
        self.process = subprocess.Popen(
            [executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *options,
             "--dir", str(self.directory), "--logfile", str(self.directory / "redis.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, password=self.password, socket_connect_timeout=1)
        try:
            wait_until(lambda: self._answers(client), timeout_s=15, what=f"redis-server on port {self.port}")
        finally:
            client.close()

    def stop(self) -> None:
        """SIGKILL: whatever was not written to the append-only file is gone."""
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
        except redis.BusyLoadingError:
            return False


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def durable_redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A started :class:`RedisServer` that fsyncs every write (AOF) in ``tmp_path/redis``, stopped on leaving."""
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(directory, appendonly=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()
