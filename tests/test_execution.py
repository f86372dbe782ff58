"""One render of a job at a time, and never more attempts than the retry limit allows.

A broker may deliver a render message again while a live worker still renders
it (an acknowledgement deadline, a partition, a paused worker): the job's
execution lease in the job store keeps the copy waiting, and once the render
is done the copy renders nothing. Attempts are counted in the job store when
they start, so the retry limit holds even when each attempt kills its worker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from conftest import chapter_request, running_worker, wait_for_state, wait_until

from preview_actors import JobState, execution
from preview_actors.dlq import dead_letters, replay
from preview_actors.runtime import Runtime
from preview_actors.store import JobRecord
from preview_actors.submit import new_record, pipeline_for


def submit_keeping_the_message(runtime: Runtime, **request: object) -> tuple[str, dramatiq.Message[Any]]:
    """Submit a job as ``submit_preview`` does; return its id and its render message (to enqueue a copy)."""
    record = new_record(chapter_request(**request), request_id=None, settings=runtime.settings, enqueued=True)  # type: ignore[arg-type]
    runtime.store.create(record)
    pipeline = pipeline_for(record, runtime.broker)
    pipeline.run()  # type: ignore[no-untyped-call]
    return record.job_id, pipeline.messages[0]


def stored(runtime: Runtime, job_id: str) -> JobRecord:
    record = runtime.store.get(job_id)
    assert record is not None, f"no job {job_id}"
    return record


class Trace:
    """The mock renderer's trace file: a "start PID T" line per render start, "end PID T" per normal end."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def lines(self, kind: str) -> list[str]:
        if not self.path.exists():
            return []
        return [line for line in self.path.read_text().splitlines() if line.startswith(kind + " ")]

    @property
    def starts(self) -> int:
        return len(self.lines("start"))

    @property
    def ends(self) -> int:
        return len(self.lines("end"))


@pytest.fixture
def trace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Trace:
    path = tmp_path / "renders.trace"
    monkeypatch.setenv("PREVIEW_MOCK_TRACE_FILE", str(path))
    return Trace(path)


def _said(caplog: pytest.LogCaptureFixture, text: str) -> int:
    return sum(1 for record in caplog.records if text in record.getMessage())


def test_a_copy_delivered_while_the_job_renders_starts_no_second_render(
    runtime: Runtime, trace: Trace, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.setenv("PREVIEW_MOCK_DELAY_MS", "2000")
    with running_worker(runtime, threads=2):
        # Given a job rendering on a worker with a free thread
        job_id, message = submit_keeping_the_message(runtime)
        wait_until(lambda: trace.starts, what="the render to start")

        # When the broker delivers its render message again (the same message)
        runtime.broker.enqueue(message)

        # Then the copy waits for the render, and renders nothing once it is done
        record = wait_for_state(runtime, job_id, JobState.SUCCEEDED, JobState.FAILED)
        wait_until(lambda: _said(caplog, "nothing to do"), timeout_s=30, what="the copy to be processed")

    assert record.state is JobState.SUCCEEDED, record.error
    assert (trace.starts, trace.ends) == (1, 1)
    assert stored(runtime, job_id).attempts == 1
    assert _said(caplog, "Job succeeded.") == 1
    assert _said(caplog, "Rendering attempt") == 1


def test_a_job_that_used_its_attempt_budget_is_dead_lettered_without_rendering_and_replay_renews_it(
    runtime_factory: Callable[..., Runtime], broker_kind: str, trace: Trace
) -> None:
    runtime = runtime_factory(broker_kind, max_retries=1)
    # Given a job whose two allowed attempts started and never finished (their workers died)
    job_id, _ = submit_keeping_the_message(runtime)
    for _ in range(2):
        runtime.store.begin_attempt(job_id, state=JobState.RENDERING)

    # When its message is delivered again
    with running_worker(runtime, threads=2):
        record = wait_for_state(runtime, job_id, JobState.FAILED, JobState.SUCCEEDED)
        letters = wait_until(lambda: dead_letters(runtime), what="the dead letter")

    # Then no render starts: the job fails, dead-lettered, saying why
    assert record.state is JobState.FAILED
    assert (record.attempts, record.dead_lettered, trace.starts) == (2, True, 0)
    assert record.error is not None and "2 render attempts" in record.error["message"]
    assert [(letter.job_id, letter.stage) for letter in letters] == [(job_id, "render")]

    # And a replay gives it a fresh budget: it renders (attempt 3) and succeeds
    assert replay(runtime, {job_id}) == [job_id]
    assert stored(runtime, job_id).attempt_base == 2
    with running_worker(runtime, threads=2):
        record = wait_for_state(runtime, job_id, JobState.SUCCEEDED, JobState.FAILED)
    assert record.state is JobState.SUCCEEDED, record.error
    assert (record.attempts, trace.starts) == (3, 1)


def test_a_graceful_hand_back_is_not_charged_to_the_attempt_budget(
    runtime_factory: Callable[..., Runtime], trace: Trace, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a budget of one attempt (no retries), and workers stopped gracefully twice mid-render
    runtime = runtime_factory("sqlite", max_retries=0)
    monkeypatch.setenv("PREVIEW_MOCK_DELAY_MS", "60000")
    job_id, _ = submit_keeping_the_message(runtime)
    for stops in (1, 2):
        with running_worker(runtime, threads=1):
            wait_until(lambda stops=stops: trace.starts == stops, what=f"render {stops} to start")  # type: ignore[misc]
        wait_until(
            lambda stops=stops: stored(runtime, job_id).attempt_base == stops,  # type: ignore[misc]
            timeout_s=10,
            what="the attempt to be handed back",
        )

    # When a worker runs it to the end
    monkeypatch.setenv("PREVIEW_MOCK_DELAY_MS", "0")
    with running_worker(runtime, threads=1):
        record = wait_for_state(runtime, job_id, JobState.SUCCEEDED, JobState.FAILED)

    # Then the hand-backs used none of its budget
    assert record.state is JobState.SUCCEEDED, record.error
    assert (record.attempts, record.attempt_base, trace.starts) == (3, 2, 3)


def test_a_render_that_lost_its_execution_lease_stops_and_waits_for_the_new_holder(
    runtime_factory: Callable[..., Runtime], trace: Trace, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a render whose lease is renewed too late (a worker paused past it): it expires in between
    runtime = runtime_factory("stub")
    monkeypatch.setattr(execution, "LEASE_TTL_S", 0.5)
    monkeypatch.setattr(execution, "RENEWALS_PER_TTL", 0.25)  # a renewal every 2 s
    monkeypatch.setenv("PREVIEW_MOCK_DELAY_MS", "60000")
    with running_worker(runtime, threads=1):
        job_id, _ = submit_keeping_the_message(runtime)
        wait_until(lambda: trace.starts == 1, what="the render to start")

        # When another delivery takes the lease
        lease = f"job:{job_id}"
        wait_until(lambda: runtime.store.acquire_lease(lease, "rival", ttl_s=60), timeout_s=5, what="the lease to expire")

        # Then the first render is stopped, and its message waits (uncharged) for the rival to finish
        wait_until(
            lambda: not trace.ends and stored(runtime, job_id).attempt_base == 1, timeout_s=10, what="the render to stop"
        )
        monkeypatch.setenv("PREVIEW_MOCK_DELAY_MS", "0")
        assert trace.starts == 1
        runtime.store.release_lease(lease, "rival")
        record = wait_for_state(runtime, job_id, JobState.SUCCEEDED, JobState.FAILED)
    assert record.state is JobState.SUCCEEDED, record.error
    assert (trace.starts, trace.ends, record.attempts, record.attempt_base) == (2, 1, 2, 1)


def test_a_render_stops_when_its_job_has_ended_elsewhere(
    runtime_factory: Callable[..., Runtime], trace: Trace, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = runtime_factory("stub")
    monkeypatch.setenv("PREVIEW_MOCK_DELAY_MS", "60000")
    with running_worker(runtime, threads=1):
        job_id, _ = submit_keeping_the_message(runtime)
        wait_until(lambda: trace.starts == 1, what="the render to start")

        # When the job ends while it renders (another delivery finished it)
        runtime.store.update(job_id, state=JobState.SUCCEEDED, progress=1.0)

        # Then the renderer is stopped, nothing is retried, and the job stays as it ended
        runtime.broker.join("preview-render", timeout=10_000)
        runtime.broker.join("preview-finish", timeout=10_000)
    record = stored(runtime, job_id)
    assert (record.state, record.attempts, trace.starts, trace.ends) == (JobState.SUCCEEDED, 1, 1, 0)
