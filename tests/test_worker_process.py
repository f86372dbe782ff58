"""``dramatiq preview_actors`` as a real process: start, process, stop, crash."""

from __future__ import annotations

import time
from typing import Callable

import pytest

from conftest import chapter_request, wait_for_state, wait_until
from preview_actors import JobState, submit_preview
from preview_actors.runtime import Runtime
from workers import renderer_pids

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "redis"])
def process_runtime(request: pytest.FixtureRequest, runtime_factory: Callable[..., Runtime]) -> Runtime:
    return runtime_factory(request.param)



def test_worker_processes_a_job_from_another_process_and_stops_on_sigterm(process_runtime, worker_processes) -> None:
    worker = worker_processes(process_runtime, "worker")

    job_id = submit_preview(chapter_request()).record.job_id  # this test process is the other service
    record = wait_for_state(process_runtime, job_id, JobState.SUCCEEDED, JobState.FAILED)

    assert record.state is JobState.SUCCEEDED, record.error
    assert worker.terminate() == 0
    assert "Traceback" not in worker.output


#: Seconds within which a killed worker's job must be finished by another (issue: 60 on every broker).
RECOVERY_BOUND_S = 60


@pytest.mark.parametrize("kind", ["sqlite", "redis", "rabbitmq"])
def test_sigkill_mid_render_the_job_still_succeeds_once(kind: str, runtime_factory, worker_processes) -> None:
    process_runtime = runtime_factory(kind)
    # Given a worker rendering a job whose renderer hangs
    doomed = worker_processes(process_runtime, "doomed", PREVIEW_MOCK_HANG="1")
    job_id = submit_preview(chapter_request()).record.job_id
    wait_for_state(process_runtime, job_id, JobState.RENDERING)
    wait_until(lambda: renderer_pids(job_id), what="the renderer to start")

    # When the worker is killed with SIGKILL
    doomed.kill()
    killed_at = time.monotonic()

    # Then its renderer dies with it, and another worker finishes the job promptly
    wait_until(lambda: not renderer_pids(job_id), timeout_s=10, what="the orphaned renderer to die")
    worker_processes(process_runtime, "rescuer")
    record = wait_for_state(process_runtime, job_id, JobState.SUCCEEDED, JobState.FAILED, timeout_s=RECOVERY_BOUND_S)
    assert record.state is JobState.SUCCEEDED, record.error
    assert time.monotonic() - killed_at < RECOVERY_BOUND_S
    assert record.attempts == 2
    videos = list((process_runtime.settings.data_dir / "artifacts").rglob("*.mp4"))
    assert len(videos) == 1


def test_sigterm_with_prefetched_messages_loses_none(process_runtime, worker_processes) -> None:
    # Given a one-thread worker busy with a slow render and holding prefetched jobs
    first = worker_processes(process_runtime, "first", threads=1, PREVIEW_MOCK_DELAY_MS="20000")
    jobs = [submit_preview(chapter_request(steps=n + 1)).record.job_id for n in range(6)]
    wait_until(
        lambda: any(process_runtime.store.get(job).state is JobState.RENDERING for job in jobs),
        what="a render to start",
    )

    # When it is stopped gracefully
    assert first.terminate() == 0
    assert not any(renderer_pids(job) for job in jobs)  # its running render was killed with it

    # Then a second worker finishes every job: none lost
    worker_processes(process_runtime, "second")
    for job_id in jobs:
        record = wait_for_state(process_runtime, job_id, JobState.SUCCEEDED, JobState.FAILED, timeout_s=90)
        assert record.state is JobState.SUCCEEDED, record.error
    assert "Traceback" not in first.output
