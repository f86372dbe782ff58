"""``dramatiq preview_actors`` as a real process: start, process, stop, crash."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import chapter_request, wait_for_state, wait_until
from workers import WorkerProcess, renderer_pids

from preview_actors import JobState, submit_preview
from preview_actors.runtime import Runtime

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


def trace(path: Path) -> list[tuple[str, float]]:
    """(event, epoch seconds) of each ``start``/``end`` line the mock renderer wrote to its trace file."""
    if not path.exists():
        return []
    events = []
    for line in path.read_text().splitlines():
        event, _pid, at = line.split()
        events.append((event, float(at)))
    return events


#: Seconds within which a worker stopped mid-render exits (the issue saw 13 s and 30 s; ~2.5 s is the cost).
STOP_BOUND_S = 6
#: Trials of SIGTERM mid-render per broker; every one must pass (the issue: 2 of 4 failed).
STOP_TRIALS = 5


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_sigterm_mid_render_leaves_the_job_queued_for_another_worker(
    kind: str, runtime_factory: Callable[..., Runtime], worker_processes, tmp_path: Path
) -> None:
    process_runtime = runtime_factory(kind)
    for trial in range(STOP_TRIALS):
        # Given a worker with an idle thread, rendering a long job (the only one)
        renders = tmp_path / f"stopping-{trial}.trace"
        stopping = worker_processes(
            process_runtime, f"stopping-{trial}", threads=2,
            PREVIEW_MOCK_DELAY_MS="30000", PREVIEW_MOCK_TRACE_FILE=str(renders),
        )  # fmt: skip
        job_id = submit_preview(chapter_request()).record.job_id
        wait_until(lambda job_id=job_id: renderer_pids(job_id), what="the render to start")

        # When it gets SIGTERM
        signalled_at = time.monotonic()
        assert stopping.terminate() == 0
        stop_s = time.monotonic() - signalled_at

        # Then it exits promptly, without starting the render it handed back, and the job says it waits
        starts = [at for event, at in trace(renders) if event == "start"]
        assert len(starts) == 1, f"trial {trial}: the stopping worker started {len(starts)} renders"
        assert stop_s < STOP_BOUND_S, f"trial {trial}: the worker took {stop_s:.1f}s to stop"
        assert process_runtime.store.get(job_id).state is JobState.QUEUED
        assert "Traceback" not in stopping.output

        # And another worker renders it
        rescuer = worker_processes(process_runtime, f"rescuer-{trial}", threads=1)
        record = wait_for_state(process_runtime, job_id, JobState.SUCCEEDED, JobState.FAILED)
        assert record.state is JobState.SUCCEEDED, record.error
        assert rescuer.terminate() == 0


@pytest.mark.parametrize("kind", ["sqlite", "redis", "rabbitmq"])
def test_two_one_thread_workers_render_two_jobs_at_once(
    kind: str, runtime_factory: Callable[..., Runtime], tmp_path: Path
) -> None:
    process_runtime = runtime_factory(kind)
    # Given two renders waiting together — the first consumer to look sees both
    jobs = [submit_preview(chapter_request()).record.job_id for _ in range(2)]

    # When two one-thread workers start at the same time
    traces = [tmp_path / f"worker-{n}.trace" for n in range(2)]
    workers = [
        WorkerProcess(
            process_runtime,
            tmp_path / f"worker-{n}.log",
            threads=1,
            PREVIEW_MOCK_DELAY_MS="4000",
            PREVIEW_MOCK_TRACE_FILE=str(traces[n]),
        )
        for n in range(2)
    ]
    try:
        for worker in workers:
            worker.wait_ready()
        for job_id in jobs:
            record = wait_for_state(process_runtime, job_id, JobState.SUCCEEDED, JobState.FAILED)
            assert record.state is JobState.SUCCEEDED, record.error
    finally:
        for worker in workers:
            worker.close()

    # Then each rendered one, and the two renders ran at the same time
    renders = [trace(path) for path in traces]
    assert [[event for event, _ in events] for events in renders] == [["start", "end"], ["start", "end"]], (
        "one worker took both renders"
    )
    (start_a, end_a), (start_b, end_b) = ([at for _, at in events] for events in renders)
    assert max(start_a, start_b) < min(end_a, end_b), "the renders ran one after the other"
