"""A short Redis outage in the middle of a render: the render goes on, and is neither failed nor repeated.

The renderer does not need Redis. Status and progress writes that fail while
Redis is away wait for it (or, for progress, are skipped) instead of failing
the render, so the job ends ``succeeded`` on its first attempt.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import chapter_request, make_settings, wait_for_state, wait_until
from redis_server import RedisServer, durable_redis_server

import preview_actors
from preview_actors import JobState, submit_preview

pytestmark = [pytest.mark.slow, pytest.mark.redis]

#: How long the render takes, and how long Redis is away in its middle, milliseconds and seconds.
RENDER_MS = 6_000
OUTAGE_S = 3.0


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own that fsyncs every write, so a restart keeps queues and statuses."""
    with durable_redis_server(tmp_path) as server:
        yield server


def test_a_short_redis_outage_during_a_render_neither_fails_nor_repeats_it(
    private_redis: RedisServer, tmp_path: Path, worker_processes: Callable[..., object]
) -> None:
    # Given a worker process rendering a 6 s job, broker and job store on one Redis
    runtime = preview_actors.setup(make_settings(tmp_path, private_redis.url))
    try:
        trace = tmp_path / "renders.trace"
        worker = worker_processes(
            runtime, "worker", threads=2, PREVIEW_MOCK_DELAY_MS=str(RENDER_MS), PREVIEW_MOCK_TRACE_FILE=str(trace)
        )
        job_id = submit_preview(chapter_request()).record.job_id
        wait_until(lambda: trace.exists() and "start" in trace.read_text(), what="the render to start")

        # When Redis goes away for 3 s while it renders (SIGKILL; every acknowledged write was fsynced)
        private_redis.stop()
        time.sleep(OUTAGE_S)  # the outage itself, not a wait for a condition
        private_redis.start()

        # Then the render finishes and the job succeeds on its first attempt, with no traceback logged
        record = wait_for_state(runtime, job_id, JobState.SUCCEEDED, JobState.FAILED, timeout_s=60)
        assert record.state is JobState.SUCCEEDED, record.error
        assert record.attempts == 1
        assert trace.read_text().count("start") == 1
        assert "Traceback" not in worker.output  # type: ignore[attr-defined]
    finally:
        preview_actors.setup(make_settings(tmp_path, "stub://"))
