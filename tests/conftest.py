"""Fixtures: a runtime per real broker, workers, and condition waits.

Each broker fixture flushes its queues before and after. A missing Redis or
RabbitMQ skips its cases locally and fails them in CI (``CI`` set), so CI can
never pass by skipping.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

# Importing preview_actors sets up the broker named by the environment: make
# that a harmless in-memory one before any test module imports it.
os.environ.setdefault("PREVIEW_BROKER_URL", "stub://")
if "DATA_DIR" not in os.environ:  # a folder of this session's own, removed when it ends
    os.environ["DATA_DIR"] = tempfile.mkdtemp(prefix="preview-test-")
    atexit.register(shutil.rmtree, os.environ["DATA_DIR"], ignore_errors=True)

import attrs
import dramatiq
import pytest

import preview_actors
from preview_actors.runtime import Runtime
from preview_actors.settings import Settings
from preview_actors.store import JobRecord, JobState

T = TypeVar("T")

REPO = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("PREVIEW_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
AMQP_URL = os.environ.get("PREVIEW_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
IN_CI = bool(os.environ.get("CI"))


def wait_until(predicate: Callable[[], T], *, timeout_s: float = 30.0, interval_s: float = 0.02, what: str = "condition") -> T:
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(interval_s)


def server_reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_server(name: str, host: str, port: int) -> None:
    if server_reachable(host, port):
        return
    message = f"{name} is not running on {host}:{port}"
    if IN_CI:
        pytest.fail(message + " (CI must run every broker)")
    pytest.skip(message)


def make_settings(tmp_path: Path, broker_url: str, **overrides: object) -> Settings:
    data_dir = tmp_path / "data"
    assets = tmp_path / "assets"
    assets.mkdir(exist_ok=True)
    store_url = {
        "stub": "memory://",
        "sqlite": broker_url,
        "redis": broker_url,
        "amqp": f"sqlite:///{data_dir / 'jobs.db'}",
    }[broker_url.partition("://")[0]]
    settings = Settings(
        broker_url=broker_url,
        store_url=store_url,
        data_dir=data_dir,
        renderer="mock",
        render_timeout_s=30.0,
        max_retries=2,
        retry_min_backoff_ms=50,
        retry_max_backoff_ms=400,
        asset_root=assets,
    )
    return attrs.evolve(settings, **overrides)


def broker_url_for(kind: str, tmp_path: Path) -> str:
    if kind == "stub":
        return "stub://"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'queue.db'}"
    if kind == "redis":
        require_server("Redis", "127.0.0.1", 6379)
        return REDIS_URL
    require_server("RabbitMQ", "127.0.0.1", 5672)
    return AMQP_URL


def flush(runtime: Runtime) -> None:
    broker = runtime.broker
    for queue in ("preview-render", "preview-finish"):
        broker.declare_queue(queue)
    broker.flush_all()
    client = getattr(runtime.store, "client", None)
    if client is not None:
        client.flushdb()


BROKERS = ["stub", "sqlite", "redis", "rabbitmq"]


@pytest.fixture(params=BROKERS)
def broker_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def runtime_factory(tmp_path: Path) -> Iterator[Callable[..., Runtime]]:
    """Set up preview_actors on a broker kind with test settings; flushed before and after."""
    made: list[Runtime] = []

    def make(kind: str, **overrides: object) -> Runtime:
        settings = make_settings(tmp_path, broker_url_for(kind, tmp_path), **overrides)
        runtime = preview_actors.setup(settings)
        flush(runtime)
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        flush(runtime)
    preview_actors.setup(make_settings(tmp_path, "stub://"))


@pytest.fixture
def runtime(runtime_factory: Callable[..., Runtime], broker_kind: str) -> Runtime:
    return runtime_factory(broker_kind)


@contextlib.contextmanager
def running_worker(runtime: Runtime, *, threads: int = 4) -> Iterator[dramatiq.Worker]:
    """A dramatiq worker in this process, on the runtime's broker, stopped on leaving."""
    worker = dramatiq.Worker(runtime.broker, worker_threads=threads, worker_timeout=100)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


@pytest.fixture
def worker_processes(tmp_path: Path) -> Iterator[Callable[..., object]]:
    """Start ``dramatiq preview_actors`` processes (``tests/workers.WorkerProcess``), ready; killed on leaving."""
    from workers import WorkerProcess  # workers imports this module

    started: list[WorkerProcess] = []

    def start(runtime: Runtime, name: str = "worker", **options: object) -> WorkerProcess:
        worker = WorkerProcess(runtime, tmp_path / f"{name}.log", **options)  # type: ignore[arg-type]
        started.append(worker)
        worker.wait_ready()
        return worker

    yield start
    for worker in started:
        worker.close()


@pytest.fixture
def worker(runtime: Runtime) -> Iterator[dramatiq.Worker]:
    with running_worker(runtime) as worker:
        yield worker


def wait_for_state(runtime: Runtime, job_id: str, *states: JobState, timeout_s: float = 60.0) -> JobRecord:
    def reached() -> JobRecord | None:
        record = runtime.store.get(job_id)
        return record if record is not None and record.state in states else None

    return wait_until(reached, timeout_s=timeout_s, what=f"job {job_id} to reach {', '.join(map(str, states))}")


def chapter_request(*, steps: int = 2, project: str = "project-1", **fields: object) -> dict[str, object]:
    """A small valid job request body."""
    body: dict[str, object] = {
        "projectId": project,
        "previewRequest": {
            "chapterId": "chapter-1",
            "output": {"width": 320, "height": 180, "fps": 10},
            "steps": [
                {"id": f"step-{n}", "durationMs": 500, "title": f"Step {n}", "background": "#102030"}
                for n in range(steps)
            ],
        },
    }
    body.update(fields)
    return body


@pytest.fixture(scope="session")
def ffmpeg() -> str:
    """The ffmpeg the renderer uses (the imageio-ffmpeg wheel's, or PREVIEW_FFMPEG)."""
    from renderers.ffmpeg.process import ffmpeg_exe

    return ffmpeg_exe()
