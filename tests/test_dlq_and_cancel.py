"""Dead letters listed and replayed on every broker; cancelling queued and running jobs."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from conftest import REPO, chapter_request, running_worker, wait_for_state, wait_until
from workers import renderer_pids, worker_env

from preview_actors import JobState, submit_preview
from preview_actors.cancel import cancel_job
from preview_actors.dlq import dead_letters, replay
from preview_actors.runtime import Runtime


def test_dead_letters_are_listed_and_replayed_once(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a job dead-lettered by a permanent failure
    monkeypatch.setenv("PREVIEW_MOCK_EXIT_CODE", "2")
    with running_worker(runtime, threads=2):
        job_id = submit_preview(chapter_request(project="dlq-project")).record.job_id
        wait_for_state(runtime, job_id, JobState.FAILED)
        wait_until(lambda: dead_letters(runtime), what="the dead letter to appear")

    # Then it is listed with its project, stage and error
    [letter] = dead_letters(runtime)
    assert (letter.job_id, letter.project_id, letter.stage) == (job_id, "dlq-project", "render")
    assert "refused the input" in letter.error
    # And when, on every broker (SQLite keeps no time of its own: the job store's is used)
    assert letter.dead_at is not None and abs(letter.dead_at - time.time()) < 120

    # When the cause is fixed and the job replayed
    monkeypatch.delenv("PREVIEW_MOCK_EXIT_CODE")
    assert replay(runtime, {job_id}) == [job_id]
    record = runtime.store.get(job_id)
    assert record.state is JobState.QUEUED and not record.dead_lettered and record.error is None
    with running_worker(runtime, threads=2):
        record = wait_for_state(runtime, job_id, JobState.SUCCEEDED, JobState.FAILED)

    # Then it succeeds, and replaying again changes nothing
    assert record.state is JobState.SUCCEEDED, record.error
    assert dead_letters(runtime) == []
    assert replay(runtime, {job_id}) == []
    assert replay(runtime) == []
    assert runtime.store.get(job_id).state is JobState.SUCCEEDED


def test_replay_all_and_other_jobs_untouched(runtime_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = runtime_factory("sqlite")
    monkeypatch.setenv("PREVIEW_MOCK_EXIT_CODE", "2")
    with running_worker(runtime, threads=2):
        jobs = [submit_preview(chapter_request(steps=n + 1)).record.job_id for n in range(3)]
        for job_id in jobs:
            wait_for_state(runtime, job_id, JobState.FAILED)
    assert replay(runtime, {"00000000-0000-4000-8000-000000000000"}) == []
    assert sorted(letter.job_id for letter in dead_letters(runtime)) == sorted(jobs)

    assert sorted(replay(runtime)) == sorted(jobs)
    assert dead_letters(runtime) == []


def run_cli(runtime: Runtime, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "preview_worker", *args],
        env=worker_env(runtime), cwd=REPO, capture_output=True, text=True, timeout=120,
    )


@pytest.mark.slow
def test_dlq_commands(runtime_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = runtime_factory("sqlite")
    monkeypatch.setenv("PREVIEW_MOCK_EXIT_CODE", "2")
    with running_worker(runtime, threads=1):
        job_id = submit_preview(chapter_request()).record.job_id
        wait_for_state(runtime, job_id, JobState.FAILED)

    listed = run_cli(runtime, "dlq", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [row] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert row["jobId"] == job_id and row["stage"] == "render" and row["error"]
    table = run_cli(runtime, "dlq", "list")
    assert job_id in table.stdout and "render" in table.stdout

    replayed = run_cli(runtime, "dlq", "replay", job_id)
    assert replayed.stdout.strip() == f"replayed {job_id}"
    again = run_cli(runtime, "dlq", "replay", job_id)
    assert "not in the dead-letter queue" in again.stdout
    assert run_cli(runtime, "dlq", "replay").returncode == 2
    assert runtime.store.get(job_id).state is JobState.QUEUED


def test_cancelling_a_queued_job(runtime: Runtime) -> None:
    job_id = submit_preview(chapter_request()).record.job_id

    record = cancel_job(job_id)

    assert record.state is JobState.CANCELLED
    with running_worker(runtime, threads=2):
        later = submit_preview(chapter_request(steps=3)).record.job_id  # a job after it, to know the worker ran
        wait_for_state(runtime, later, JobState.SUCCEEDED)
    assert runtime.store.get(job_id).state is JobState.CANCELLED
    assert not (runtime.settings.data_dir / "jobs" / job_id / "container.json").exists()
    assert dead_letters(runtime) == []


def test_cancelling_a_running_job_kills_its_renderer(runtime_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = runtime_factory("sqlite")
    monkeypatch.setenv("PREVIEW_MOCK_DELAY_MS", "60000")
    with running_worker(runtime, threads=2):
        job_id = submit_preview(chapter_request()).record.job_id
        wait_for_state(runtime, job_id, JobState.RENDERING)
        wait_until(lambda: renderer_pids(job_id), what="the renderer to start")

        cancel_job(job_id)

        wait_until(lambda: not renderer_pids(job_id), timeout_s=10, what="the renderer to be killed")
    record = runtime.store.get(job_id)
    assert record.state is JobState.CANCELLED
    assert record.artifact is None
    assert not (runtime.settings.data_dir / "jobs" / job_id / "container.json").exists()
    assert dead_letters(runtime) == []


def test_cancelling_a_finished_job_changes_nothing(runtime_factory) -> None:
    runtime = runtime_factory("stub")
    with running_worker(runtime):
        job_id = submit_preview(chapter_request()).record.job_id
        wait_for_state(runtime, job_id, JobState.SUCCEEDED)
    assert cancel_job(job_id).state is JobState.SUCCEEDED


@pytest.mark.slow
def test_cancel_command(runtime_factory) -> None:
    runtime = runtime_factory("sqlite")
    job_id = submit_preview(chapter_request()).record.job_id

    done = run_cli(runtime, "cancel", job_id)
    unknown = run_cli(runtime, "cancel", "00000000-0000-4000-8000-000000000000")

    assert done.returncode == 0 and done.stdout.strip() == f"job {job_id} cancelled"
    assert unknown.returncode == 1 and "no job" in unknown.stderr
    assert runtime.store.get(job_id).state is JobState.CANCELLED
