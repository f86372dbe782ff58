"""Structured logs: JSON lines from a real worker, and one request id followed from submit to finalize."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Callable, Iterator

import pytest
from conftest import chapter_request, wait_for_state, wait_until
from workers import WorkerProcess

from preview_actors import JobState, logs, submit_preview
from preview_actors.runtime import Runtime

from .logtrace import DRAMATIQ_MAIN_PROCESS, attempt_log_headers, parse_lines, with_job, with_request


@pytest.mark.slow
def test_a_request_id_follows_its_job_through_every_stage_in_json_lines(
    redis_runtime: Callable[..., Runtime], worker_processes: Callable[..., WorkerProcess]
) -> None:
    # Given a worker logging JSON
    runtime = redis_runtime()
    worker = worker_processes(runtime, PREVIEW_LOG_FORMAT="json")

    # When a job submitted with a request id succeeds
    request_id = f"trace-{uuid.uuid4().hex}"
    job_id = submit_preview(chapter_request(requestId=request_id)).record.job_id
    record = wait_for_state(runtime, job_id, JobState.SUCCEEDED, JobState.FAILED)
    assert record.state is JobState.SUCCEEDED, record.error
    wait_until(lambda: "Job succeeded." in worker.output, timeout_s=10, what="the finalize stage's last line")

    # Then every line is a JSON object, dramatiq's own included (only its main process keeps its format)
    records, others = parse_lines(worker.output)
    assert [line for line in others if DRAMATIQ_MAIN_PROCESS not in line] == []
    assert any(r["logger"].startswith("dramatiq.WorkerProcess") and "ready for action" in r["message"] for r in records)
    # And each stage's lines carry the request id, the job id, the stage and (render) the attempt
    traced = with_request(records, request_id)
    assert {r["stage"] for r in traced} == {"render", "hash", "finalize"}
    assert all(r["jobId"] == job_id for r in traced)
    assert {r["attempt"] for r in traced} == {1}
    # And no line about the job lacks the request id
    assert with_job(records, job_id) == traced
    # And the render attempt's log file starts with the same ids
    [header] = attempt_log_headers(runtime.settings.data_dir, job_id)
    assert (header["requestId"], header["jobId"], header["attempt"]) == (request_id, job_id, 1)


@pytest.fixture
def json_logger() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger set up by ``logs.install("json")`` writing into a buffer."""
    logger = logging.getLogger(f"test.logs.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    buffer = io.StringIO()
    logger.addHandler(logging.StreamHandler(buffer))
    logs.install("json", logger=logger)
    yield logger, buffer
    logger.handlers.clear()


def test_installed_json_lines_carry_context_and_exception(json_logger: tuple[logging.Logger, io.StringIO]) -> None:
    logger, buffer = json_logger

    with logs.bound(requestId="req-1", jobId="job-1", stage="render", attempt=2):
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logger.exception("Stage %s failed", "render")

    [line] = buffer.getvalue().splitlines()
    document = json.loads(line)
    assert document["message"] == "Stage render failed"
    assert (document["requestId"], document["jobId"], document["stage"], document["attempt"]) == ("req-1", "job-1", "render", 2)
    assert document["level"] == "error"
    assert "RuntimeError: boom" in document["exception"]
