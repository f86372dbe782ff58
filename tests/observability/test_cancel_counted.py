"""Cancelled jobs are counted once, by a worker, whoever cancelled them (the API or the CLI).

``preview-worker cancel`` is a process that exits at once: a counter kept in
it dies with it. Every outcome in ``preview_jobs_completed_total`` is counted
by the workers, so a scrape of them sees all of them once.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from conftest import REPO, chapter_request, running_worker, wait_for_state, wait_until
from prometheus_client import REGISTRY
from workers import WorkerProcess, worker_env

from preview_actors import JobState, submit_preview
from preview_actors.cancel import cancel_job
from preview_actors.runtime import Runtime

from .support import api_server, free_port, scrape, scrape_until, value


def cancelled_here() -> float:
    return REGISTRY.get_sample_value("preview_jobs_completed_total", {"outcome": "cancelled"}) or 0.0


def test_a_cancel_is_counted_by_the_worker_once(runtime_factory: Callable[..., Runtime]) -> None:
    # Given a queued job and no worker yet
    runtime = runtime_factory("stub")
    job_id = submit_preview(chapter_request()).record.job_id
    before = cancelled_here()

    # When it is cancelled twice (the second finds it finished), then a worker runs
    assert cancel_job(job_id, runtime=runtime).state is JobState.CANCELLED
    assert cancel_job(job_id, runtime=runtime).state is JobState.CANCELLED
    assert cancelled_here() == before  # the canceller counts nothing itself
    with running_worker(runtime, threads=1):
        wait_until(lambda: cancelled_here() == before + 1, timeout_s=10, what="the cancellation to be counted")
        runtime.broker.join("preview-finish")  # every message the cancels sent is done

    # Then the worker counted it once
    assert cancelled_here() == before + 1


@pytest.mark.slow
def test_cli_and_api_cancels_are_each_counted_once_where_a_scrape_sees_them(
    redis_runtime: Callable[..., Runtime], worker_processes: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    # Given a worker serving /metrics, renders that take long enough to be cancelled, and the API server
    runtime = redis_runtime()
    worker_port = free_port()
    worker_processes(runtime, PREVIEW_METRICS_PORT=str(worker_port), PREVIEW_MOCK_DELAY_MS="20000")
    worker_url = f"http://127.0.0.1:{worker_port}/metrics"
    with api_server(runtime, tmp_path / "api.log") as base:
        # When one rendering job is cancelled with `preview-worker cancel` (a process that then exits)
        by_cli = submit_preview(chapter_request()).record.job_id
        wait_for_state(runtime, by_cli, JobState.RENDERING)
        cli = subprocess.run(
            [sys.executable, "-m", "preview_worker", "cancel", by_cli],
            env=worker_env(runtime), cwd=REPO, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert cli.returncode == 0, cli.stderr
        assert wait_for_state(runtime, by_cli, JobState.CANCELLED).state is JobState.CANCELLED

        # Then the worker's scrape counts it
        scrape_until(
            worker_url,
            lambda found: value(found, "preview_jobs_completed_total", outcome="cancelled") == 1,
            what="the CLI's cancel in the worker's scrape",
        )

        # When another job is cancelled through the API (DELETE)
        by_api = submit_preview(chapter_request(steps=3)).record.job_id
        assert httpx.delete(f"{base}/api/preview/{by_api}", timeout=30).status_code == 200

        # Then it is counted once over both scrapes: by the worker, not by the API as well
        worker = scrape_until(
            worker_url,
            lambda found: value(found, "preview_jobs_completed_total", outcome="cancelled") == 2,
            what="the API's cancel in the worker's scrape",
        )
        api = scrape(f"{base}/metrics")
    assert value(api, "preview_jobs_completed_total", outcome="cancelled") == 0
    assert value(worker, "preview_jobs_completed_total", outcome="cancelled") == 2
    assert value(worker, "preview_queue_depth") == 0
