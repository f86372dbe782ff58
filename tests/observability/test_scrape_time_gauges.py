"""Gauges are read when scraped: once jobs finish, every scrape (API or worker) shows an empty queue.

``preview_queue_depth`` used to be set by events (a job accepted by the API,
a message done by a worker), so an idle system kept the last value forever
and the alerts built on it fired. These tests scrape after the fact and
expect the store's count of that moment.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from conftest import chapter_request, make_settings, wait_for_state, wait_until
from prometheus_client import REGISTRY, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from workers import WorkerProcess

import preview_actors
from preview_actors import JobState, submit_preview
from preview_actors.cancel import cancel_job
from preview_actors.metrics import exposition_registry
from preview_actors.runtime import Runtime
from preview_api import metrics_app

from .support import api_server, free_port, leave_files_of_a_dead_process, scrape, value


def test_the_queue_depth_is_the_store_count_at_each_scrape(runtime_factory: Callable[..., Runtime]) -> None:
    # Given two jobs submitted through the library (nothing sets a gauge on that path)
    runtime = runtime_factory("stub")
    jobs = [submit_preview(chapter_request(steps=n + 1)).record.job_id for n in range(2)]
    assert REGISTRY.get_sample_value("preview_queue_depth") == 2

    # When one is cancelled and the other fails, with no worker running
    cancel_job(jobs[0], runtime=runtime)
    runtime.store.update(jobs[1], state=JobState.FAILED)

    # Then the next scrape reads the store again: nothing is left
    assert REGISTRY.get_sample_value("preview_queue_depth") == 0
    assert REGISTRY.get_sample_value("preview_job_store_up") == 1


def test_an_unreadable_store_leaves_the_depth_out_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a job store on a Redis that does not answer (nothing listens on the port)
    preview_actors.setup(make_settings(tmp_path, f"redis://127.0.0.1:{free_port()}/0"))
    try:
        # When it is scraped twice
        with caplog.at_level(logging.WARNING, logger="preview_actors.metrics"):
            first = generate_latest(REGISTRY).decode()
            second = generate_latest(REGISTRY).decode()
    finally:
        preview_actors.setup(make_settings(tmp_path, "stub://"))

    # Then both scrapes answer, without a made-up depth, saying the store is down, logged once per outage
    for exposition in (first, second):
        assert "\npreview_job_store_up 0.0\n" in exposition
        assert "\npreview_queue_depth " not in exposition
    warnings = [record for record in caplog.records if "job store" in record.getMessage()]
    assert len(warnings) == 1, [record.getMessage() for record in caplog.records]
    # And once it can be read again, the depth is back
    assert REGISTRY.get_sample_value("preview_queue_depth") == 0
    assert REGISTRY.get_sample_value("preview_job_store_up") == 1


def test_the_multiprocess_exposition_reads_the_depth_at_scrape_too(
    runtime_factory: Callable[..., Runtime], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an unfinished job, and prometheus-client's multiprocess mode (what several processes serve)
    runtime = runtime_factory("stub")
    job_id = submit_preview(chapter_request()).record.job_id
    directory = tmp_path / "prometheus"
    directory.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))

    # When the exposition registry is scraped, before and after the job ends
    registry = exposition_registry()
    before = registry.get_sample_value("preview_queue_depth")
    runtime.store.update(job_id, state=JobState.SUCCEEDED)
    after = registry.get_sample_value("preview_queue_depth")

    # Then it read the store each time
    assert (before, after) == (1, 0)


def test_renders_in_progress_of_a_process_killed_outright_leave_the_multiprocess_scrape(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a multiprocess directory with the files of a process killed during a render
    directory = tmp_path / "prometheus"
    directory.mkdir()
    leave_files_of_a_dead_process(directory)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))

    # When it is scraped
    registry = exposition_registry()

    # Then its render is not in progress any more, and what it counted still counts
    assert not registry.get_sample_value("preview_renders_in_progress")
    assert registry.get_sample_value("preview_jobs_completed_total", {"outcome": "succeeded"}) == 5


def test_the_api_reads_the_store_for_a_scrape_off_the_event_loop(
    runtime_factory: Callable[..., Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a job store that takes its time to count (a slow or distant Redis)
    runtime = runtime_factory("stub")
    release = threading.Event()

    def slow_count() -> int:
        release.wait(5)
        return 0

    monkeypatch.setattr(runtime.store, "count_unfinished", slow_count)

    async def ping(request: Request) -> PlainTextResponse:
        return PlainTextResponse("pong")

    app = Starlette(routes=[Route("/metrics", metrics_app()), Route("/ping", ping)])

    async def scenario() -> tuple[float, bool, httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
            # When a scrape waits for the store and another request comes in meanwhile
            scrape = asyncio.create_task(client.get("/metrics"))
            await asyncio.sleep(0.05)
            started = time.monotonic()
            assert (await client.get("/ping")).text == "pong"
            waited, scrape_pending = time.monotonic() - started, not scrape.done()
            release.set()
            return waited, scrape_pending, await scrape

    waited, scrape_pending, scraped = asyncio.run(scenario())

    # Then the other request is answered at once, and the scrape after the store answers
    assert scrape_pending and waited < 1.0, waited
    assert scraped.status_code == 200 and "\npreview_queue_depth 0.0\n" in scraped.text


@pytest.mark.slow
def test_the_api_scrape_shows_an_empty_queue_once_jobs_finish(
    redis_runtime: Callable[..., Runtime], worker_processes: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    # Given `preview-worker serve` and a worker
    runtime = redis_runtime()
    worker_processes(runtime)
    with api_server(runtime, tmp_path / "api.log") as base:
        # When three jobs are accepted over HTTP and all of them succeed
        with httpx.Client(base_url=f"{base}/api/preview", timeout=30) as client:
            bodies = [chapter_request(steps=n + 1, jobId=str(uuid.uuid4())) for n in range(3)]
            assert [client.post("/", json=body).status_code for body in bodies] == [202] * 3
            for body in bodies:
                wait_until(
                    lambda job_id=body["jobId"]: client.get(f"/{job_id}/status").json()["state"] == "succeeded",
                    timeout_s=60,
                    what=f"job {body['jobId']} to succeed",
                )

        # Then the first scrape of the API after that shows no unfinished job
        samples = scrape(f"{base}/metrics")
    assert value(samples, "preview_queue_depth") == 0
    assert value(samples, "preview_job_store_up") == 1


@pytest.mark.slow
@pytest.mark.parametrize("processes", [1, 2])
def test_a_worker_scrape_shows_an_empty_queue_as_soon_as_jobs_finish(
    redis_runtime: Callable[..., Runtime],
    worker_processes: Callable[..., WorkerProcess],
    tmp_path: Path,
    processes: int,
) -> None:
    # Given a worker serving /metrics (two processes: in prometheus-client's multiprocess mode)
    runtime = redis_runtime()
    port = free_port()
    env = {"PREVIEW_METRICS_PORT": str(port)}
    if processes > 1:
        directory = tmp_path / "prometheus"
        directory.mkdir()
        env["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    worker_processes(runtime, processes=processes, **env)

    # When three jobs succeed
    jobs = [submit_preview(chapter_request(steps=n + 1)).record.job_id for n in range(3)]
    for job_id in jobs:
        assert wait_for_state(runtime, job_id, JobState.SUCCEEDED, JobState.FAILED).state is JobState.SUCCEEDED

    # Then the very next scrape shows no unfinished job (not a value remembered from a message)
    samples = scrape(f"http://127.0.0.1:{port}/metrics")
    assert value(samples, "preview_queue_depth") == 0
    assert value(samples, "preview_job_store_up") == 1
    assert value(samples, "preview_renders_in_progress") == 0
