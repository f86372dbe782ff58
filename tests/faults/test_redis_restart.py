"""Redis restarted, with AOF on, while two worker processes are busy: no job lost, corrupt or duplicated."""

from __future__ import annotations

import json
import signal
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from conftest import chapter_request, make_settings, wait_until
from redis_server import RedisServer, durable_redis_server

import preview_actors
from preview_actors import submit_preview
from preview_actors.storage import sha256_of_file

pytestmark = [pytest.mark.slow, pytest.mark.redis]

JOBS = 30


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[RedisServer]:
    with durable_redis_server(tmp_path) as server:
        yield server


def _shutdown(server: RedisServer) -> None:
    """What ``systemctl restart redis`` does first: SHUTDOWN, flushing the append-only file."""
    client = redis.Redis.from_url(server.url)
    try:
        client.shutdown()
    except redis.ConnectionError:
        pass  # the server closes the connection as it exits
    finally:
        client.close()


def _kill(server: RedisServer) -> None:
    """A crash: SIGKILL; ``appendfsync always`` has fsynced every write Redis answered."""
    server.process.send_signal(signal.SIGKILL)


@pytest.mark.parametrize("stop_redis", [_shutdown, _kill], ids=["shutdown", "sigkill"])
def test_jobs_survive_a_redis_restart_under_load(
    stop_redis: Callable[[RedisServer], None],
    durable_redis: RedisServer,
    tmp_path: Path,
    worker_processes: Callable[..., object],
) -> None:
    # Given two worker processes × 4 threads busy with 30 jobs (more than the
    # render slots, so some wait on the delay queue) on a Redis that fsyncs every write
    runtime = preview_actors.setup(make_settings(tmp_path, durable_redis.url, retry_min_backoff_ms=100))
    try:
        job_ids = [submit_preview(chapter_request(steps=1 + n % 3, project=f"p{n}")).record.job_id for n in range(JOBS)]
        workers = [worker_processes(runtime, name, threads=4, PREVIEW_MOCK_DELAY_MS="300") for name in ("a", "b")]

        def states() -> Counter[str]:
            return Counter(runtime.store.get(job_id).state.value for job_id in job_ids)

        wait_until(lambda: states()["succeeded"] >= 5, timeout_s=60, what="five jobs to succeed")
        assert states()["succeeded"] < JOBS, "the restart must happen under load"

        # When Redis stops, both workers notice, and it starts again on the same port and files
        stop_redis(durable_redis)
        durable_redis.process.wait(timeout=30)
        wait_until(
            lambda: all("Redis is unreachable" in worker.output for worker in workers),
            timeout_s=30,
            what="both workers to notice that Redis is gone",
        )
        durable_redis.start()

        # Then every job succeeds, with intact artifacts, and finishes exactly once
        try:
            wait_until(lambda: states() == {"succeeded": JOBS}, timeout_s=120, what="every job to succeed")
        except AssertionError as timeout:
            raise AssertionError(f"{timeout}: {states()}") from None
        data_dir = runtime.settings.data_dir
        for job_id in job_ids:
            container = json.loads((data_dir / "jobs" / job_id / "container.json").read_text())
            for entry in container["artifacts"]:
                assert sha256_of_file(data_dir / entry["path"]) == (entry["sha256"], entry["size"])
        logs = "".join(worker.output for worker in workers)
        finished = Counter(line.split("jobId=")[1][:36] for line in logs.splitlines() if "Job succeeded." in line)
        assert finished == Counter({job_id: 1 for job_id in job_ids})
    finally:
        preview_actors.setup(make_settings(tmp_path, "stub://"))
