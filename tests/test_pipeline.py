"""The render → hash → finalize pipeline, on every broker, with the mock renderer."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import dramatiq
import pytest
from conftest import chapter_request, running_worker, wait_for_state, wait_until

from preview_actors import JobConflictError, JobState, submit_preview
from preview_actors.runtime import Runtime
from preview_actors.storage import sha256_of_file


def artifact_files(runtime: Runtime) -> list[Path]:
    root = runtime.settings.data_dir / "artifacts" / "sha256"
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []


def assert_container_matches_disk(runtime: Runtime, job_id: str) -> dict:
    data_dir = runtime.settings.data_dir
    container = json.loads((data_dir / "jobs" / job_id / "container.json").read_text())
    assert container["jobId"] == job_id
    for entry in container["artifacts"]:
        path = data_dir / entry["path"]
        assert sha256_of_file(path) == (entry["sha256"], entry["size"]), entry["role"]
        if entry["role"] != "log":
            assert entry["path"].startswith(f"artifacts/sha256/{entry['sha256'][:2]}/{entry['sha256'][2:4]}/")
    return container


def test_jobs_succeed_with_verified_container(runtime: Runtime, worker: dramatiq.Worker) -> None:
    # Given three jobs submitted at once
    jobs = [submit_preview(chapter_request(steps=n + 1)).record.job_id for n in range(3)]

    # Then each ends succeeded, with a container whose checksums match the files
    for job_id in jobs:
        record = wait_for_state(runtime, job_id, JobState.SUCCEEDED, JobState.FAILED)
        assert record.state is JobState.SUCCEEDED, record.error
        assert record.progress == 1.0
        assert record.attempts == 1
        container = assert_container_matches_disk(runtime, job_id)
        roles = sorted(entry["role"] for entry in container["artifacts"])
        assert roles == ["log", "plan", "poster", "report", "video"]
        assert container["renderer"] == {"name": "mock", "version": "1.0.0"}
        assert record.artifact["video"]["sha256"] == next(e["sha256"] for e in container["artifacts"] if e["role"] == "video")
        assert not (runtime.settings.data_dir / "jobs" / job_id / "attempts").exists()
    # The three requests differ, so there are three videos (the posters are identical: one file)
    videos = [path for path in artifact_files(runtime) if path.suffix == ".mp4"]
    assert len(videos) == 3


def test_dry_run_writes_plan_and_poster_only(runtime: Runtime, worker: dramatiq.Worker) -> None:
    job_id = submit_preview(chapter_request(dryRun=True)).record.job_id

    record = wait_for_state(runtime, job_id, JobState.SUCCEEDED, JobState.FAILED)

    assert record.state is JobState.SUCCEEDED, record.error
    container = assert_container_matches_disk(runtime, job_id)
    assert container["dryRun"] is True
    assert sorted(entry["role"] for entry in container["artifacts"]) == ["log", "plan", "poster", "report"]
    assert "video" not in record.artifact


def test_failing_renderer_is_retried_with_growing_delays_then_dead_lettered(
    runtime_factory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = runtime_factory("stub", max_retries=3, retry_min_backoff_ms=50, retry_max_backoff_ms=2000)
    monkeypatch.setenv("PREVIEW_MOCK_EXIT_CODE", "3")
    caplog.set_level(logging.INFO)
    with running_worker(runtime, threads=2):
        job_id = submit_preview(chapter_request()).record.job_id
        record = wait_for_state(runtime, job_id, JobState.FAILED)

    assert record.dead_lettered
    assert record.attempts == 4  # the first try and three retries
    assert record.error["code"] == "retries_exhausted"
    assert record.error["stage"] == "render"
    assert "exit code 3" in record.error["message"]
    assert "failing with exit code 3 as asked" in record.error["message"]  # the renderer's stderr tail
    # dramatiq's Retries logs each retry with its delay
    delays = [int(m) for m in re.findall(r"Retrying message \S+ in (\d+) milliseconds", caplog.text)]
    assert len(delays) == 3
    assert delays == sorted(delays) and delays[-1] > delays[0]
    assert len(runtime.broker.dead_letters) == 1


def test_retrying_state_shows_error_and_next_attempt(runtime_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = runtime_factory("stub", max_retries=5, retry_min_backoff_ms=5000, retry_max_backoff_ms=10000)
    monkeypatch.setenv("PREVIEW_MOCK_EXIT_CODE", "1")
    with running_worker(runtime, threads=1):
        job_id = submit_preview(chapter_request()).record.job_id
        record = wait_for_state(runtime, job_id, JobState.RETRYING)
    assert record.error["retryable"] is True
    assert record.error["code"] == "stage_failed"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record.error["nextAttemptAt"])
    assert not record.dead_lettered


def test_permanent_error_fails_at_once(runtime: Runtime, worker: dramatiq.Worker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREVIEW_MOCK_EXIT_CODE", "2")

    job_id = submit_preview(chapter_request()).record.job_id
    record = wait_for_state(runtime, job_id, JobState.FAILED, JobState.SUCCEEDED)

    assert record.state is JobState.FAILED
    assert record.attempts == 1
    assert record.dead_lettered
    assert record.error["code"] == "bad_input"  # the renderer exited 2: the input is at fault
    assert record.error["retryable"] is False
    assert "refused the input" in record.error["message"]


def test_missing_asset_is_a_permanent_error_naming_it(runtime_factory) -> None:
    runtime = runtime_factory("stub")
    body = chapter_request()
    body["previewRequest"]["assets"] = [{"id": "cover", "type": "image", "uri": "images/missing.png"}]
    body["previewRequest"]["steps"][0]["asset"] = "cover"
    with running_worker(runtime, threads=1):
        job_id = submit_preview(body).record.job_id
        record = wait_for_state(runtime, job_id, JobState.FAILED, JobState.SUCCEEDED)
    assert record.state is JobState.FAILED
    assert record.attempts == 1
    assert "asset 'cover'" in record.error["message"]
    assert "images/missing.png" in record.error["message"]


def test_same_job_id_same_body_is_idempotent_other_body_conflicts(runtime_factory) -> None:
    runtime = runtime_factory("stub")
    body = chapter_request(jobId="6f1c2a7e-8a4b-4d2e-9c1a-0b5e3f7d9a21")

    first = submit_preview(body)
    again = submit_preview(dict(body, requestId="another-request"))

    assert first.created and not again.created
    assert again.record.job_id == first.record.job_id
    assert len(runtime.broker.queues["preview-render"].queue) == 1  # enqueued once
    changed = chapter_request(jobId=body["jobId"], steps=3)
    with pytest.raises(JobConflictError):
        submit_preview(changed)


def test_stages_run_twice_make_one_set_of_artifacts(runtime_factory) -> None:
    """A redelivered stage (same job, twice) produces the same result and no duplicate files;
    a render delivered again once the render is done renders nothing."""
    from preview_actors import stages

    runtime = runtime_factory("stub")
    job_id = submit_preview(chapter_request()).record.job_id
    rendered = stages.render(runtime, job_id)
    first = stages.hash_artifacts(runtime, job_id, rendered)
    assert stages.render(runtime, job_id) == {"skipped": True}
    second = stages.hash_artifacts(runtime, job_id, rendered)
    files_before = artifact_files(runtime)

    assert [a for a in first["artifacts"] if a["role"] != "log"] == [a for a in second["artifacts"] if a["role"] != "log"]
    stages.finalize(runtime, job_id, second)
    stages.finalize(runtime, job_id, first)  # a late duplicate: the job is finished, nothing changes
    assert artifact_files(runtime) == files_before
    assert len([path for path in files_before if path.suffix == ".mp4"]) == 1
    record = runtime.store.get(job_id)
    assert record.state is JobState.SUCCEEDED and record.attempts == 1
    assert_container_matches_disk(runtime, job_id)


def test_stage_log_lines_carry_the_job_context(runtime_factory, caplog: pytest.LogCaptureFixture) -> None:
    runtime = runtime_factory("stub")
    caplog.set_level(logging.INFO)
    worker = dramatiq.Worker(runtime.broker, worker_threads=1, worker_timeout=100)
    worker.start()
    from preview_actors.logs import ContextFilter

    for handler in (caplog.handler,):
        handler.addFilter(ContextFilter())
    try:
        submission = submit_preview(chapter_request(requestId="trace-me-123"))
        wait_for_state(runtime, submission.record.job_id, JobState.SUCCEEDED)
    finally:
        worker.stop()
    stage_records = [r for r in caplog.records if r.name.startswith("preview_actors.stages")]
    assert {getattr(r, "stage", None) for r in stage_records} == {"render", "hash", "finalize"}
    assert all(getattr(r, "requestId", None) == "trace-me-123" for r in stage_records)
    assert all(getattr(r, "jobId", None) == submission.record.job_id for r in stage_records)


def test_nothing_is_enqueued_for_an_invalid_request(runtime_factory) -> None:
    from preview_actors import ValidationError

    runtime = runtime_factory("stub")
    with pytest.raises(ValidationError) as raised:
        submit_preview(chapter_request(projectId=7))
    assert raised.value.field == "projectId"
    assert runtime.store.count_unfinished() == 0
    assert all(not queue.queue for queue in runtime.broker.queues.values())


def test_wait_until_reports_what_it_waited_for() -> None:
    with pytest.raises(AssertionError, match="the impossible"):
        wait_until(lambda: False, timeout_s=0.05, what="the impossible")
