"""A bounded load test on loopback: 2,000 dry-run jobs through the API with several workers.

Every accepted job is accounted for (none lost, none duplicated) and the API's
metrics agree with the count.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from api_support import LiveServer
from conftest import chapter_request, wait_until
from prometheus_client import REGISTRY
from workers import WorkerProcess

from preview_actors.store import JobState
from preview_api import create_app

pytestmark = pytest.mark.slow

JOBS = 2_000
#: Submissions in flight at once.
CONCURRENCY = 32


async def submit_all(base_url: str) -> list[httpx.Response]:
    limit = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:

        async def submit(n: int) -> httpx.Response:
            async with limit:
                body = chapter_request(steps=1 + n % 5, project=f"load-{n % 7}", dryRun=True)
                return await client.post("/api/preview/", json=body)

        return await asyncio.gather(*(submit(n) for n in range(JOBS)))


def submitted_total() -> float:
    return REGISTRY.get_sample_value("preview_jobs_submitted_total") or 0.0


# 2,000 jobs through uvicorn and two worker processes: about 2 minutes on a quiet 2-core machine.
@pytest.mark.timeout(900)
def test_two_thousand_dry_runs_all_accounted_for(runtime_factory, tmp_path: Path) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    runtime = runtime_factory("redis", queue_max=10_000)
    before = submitted_total()
    workers = [
        WorkerProcess(runtime, tmp_path / f"worker-{n}.log", threads=4, PREVIEW_METRICS_PORT="0") for n in range(2)
    ]
    try:
        with LiveServer(Starlette(routes=[Mount("/api/preview", app=create_app())])) as server:
            answers = asyncio.run(submit_all(server.url))
            for worker in workers:
                worker.wait_ready()
            assert [answer.status_code for answer in answers] == [202] * JOBS
            job_ids = [answer.json()["jobId"] for answer in answers]
            assert len(set(job_ids)) == JOBS
            assert submitted_total() - before == JOBS

            wait_until(lambda: runtime.store.count_unfinished() == 0, timeout_s=240, interval_s=0.5,
                       what="every job to finish")
    finally:
        for worker in workers:
            worker.close()
    states = [runtime.store.get(job_id).state for job_id in job_ids]
    assert states.count(JobState.SUCCEEDED) == JOBS
    containers = list((runtime.settings.data_dir / "jobs").glob("*/container.json"))
    assert len(containers) == JOBS
    assert not list((runtime.settings.data_dir / "artifacts" / "sha256").rglob("*.mp4"))  # dry runs: no video
