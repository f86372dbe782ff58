"""A full queue refuses with 429 atomically: of 20 concurrent submissions exactly PREVIEW_QUEUE_MAX are queued."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import dramatiq
import httpx
import pytest
from api_support import MOUNT, LiveServer, OpenApiChecker, checker, poll  # noqa: F401 - fixtures
from conftest import chapter_request
from starlette.applications import Starlette
from starlette.routing import Mount

from preview_actors.runtime import Runtime
from preview_api import create_app

QUEUE_MAX = 5
SUBMISSIONS = 20


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_twenty_concurrent_submissions_queue_exactly_five(
    kind: str, runtime_factory: Callable[..., Runtime], checker: OpenApiChecker
) -> None:
    runtime = runtime_factory(kind, queue_max=QUEUE_MAX)
    host = Starlette(routes=[Mount(MOUNT, app=create_app())])
    job_ids = [str(uuid.uuid4()) for _ in range(SUBMISSIONS)]
    start = threading.Barrier(SUBMISSIONS)

    with LiveServer(host) as server:

        def submit(job_id: str) -> httpx.Response:
            with httpx.Client(base_url=server.url, event_hooks={"response": [checker]}) as client:
                start.wait(timeout=10)  # all at once
                return client.post(f"{MOUNT}/", json=chapter_request(jobId=job_id))

        # Given no worker, when 20 submissions arrive at once
        with ThreadPoolExecutor(max_workers=SUBMISSIONS) as pool:
            answers = dict(zip(job_ids, pool.map(submit, job_ids), strict=True))

        # Then exactly 5 are queued and 15 refused with Retry-After
        statuses = sorted(answer.status_code for answer in answers.values())
        assert statuses == [202] * QUEUE_MAX + [429] * (SUBMISSIONS - QUEUE_MAX)
        for answer in answers.values():
            if answer.status_code == 429:
                assert int(answer.headers["retry-after"]) > 0
                assert answer.json()["error"]["code"] == "queue_full"
        accepted = [job_id for job_id, answer in answers.items() if answer.status_code == 202]
        refused = [job_id for job_id, answer in answers.items() if answer.status_code == 429]
        assert runtime.store.count_unfinished() == QUEUE_MAX
        assert all(runtime.store.get(job_id) is None for job_id in refused)

        # When a worker starts, the 5 accepted jobs succeed
        worker = dramatiq.Worker(runtime.broker, worker_threads=4, worker_timeout=100)
        worker.start()
        try:
            with httpx.Client(base_url=server.url, event_hooks={"response": [checker]}) as client:
                for job_id in accepted:
                    final = list(
                        poll(
                            lambda job_id=job_id: client.get(f"{MOUNT}/{job_id}/status").json(),
                            lambda status: status["state"] in ("succeeded", "failed"),
                            timeout_s=60,
                        )
                    )[-1]
                    assert final["state"] == "succeeded", final
                # And the queue has room again
                assert client.post(f"{MOUNT}/", json=chapter_request(steps=4)).status_code == 202
        finally:
            worker.stop()
