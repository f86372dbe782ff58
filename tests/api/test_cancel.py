"""DELETE /{jobId}: cancel a queued job; a finished one answers 409; unknown 404; authorize applies."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from api_support import Api, checker, make_api, store_succeeded_job  # noqa: F401 - fixtures
from conftest import chapter_request

from preview_actors.store import JobState

MakeApi = Callable[..., Api]


def test_cancel_a_queued_job(make_api: MakeApi) -> None:
    api = make_api()
    job_id = api.client.post(api.url("/"), json=chapter_request()).json()["jobId"]

    answer = api.client.delete(api.url(f"/{job_id}"))

    assert answer.status_code == 200
    assert answer.json()["state"] == "cancelled"
    assert answer.json()["artifact"] is None
    assert api.runtime.store.get(job_id).state is JobState.CANCELLED
    again = api.client.delete(api.url(f"/{job_id}"))  # DELETE is idempotent
    assert again.status_code == 200 and again.json()["state"] == "cancelled"


@pytest.mark.parametrize("state", [JobState.SUCCEEDED, JobState.FAILED])
def test_cancel_a_finished_job_is_a_conflict(make_api: MakeApi, tmp_path: Path, state: JobState) -> None:
    api = make_api()
    job_id = store_succeeded_job(api.runtime, tmp_path, b"video", state=state)

    answer = api.client.delete(api.url(f"/{job_id}"))

    # The checker validates the body against the Error schema and the X-Request-ID header.
    assert answer.status_code == 409
    assert answer.json()["error"] == {
        "code": "job_finished",
        "message": f"job {job_id} has {state.value} already",
        "field": "jobId",
    }
    assert api.runtime.store.get(job_id).state is state


def test_cancel_unknown_or_malformed_ids_is_404(make_api: MakeApi) -> None:
    api = make_api()
    assert api.client.delete(api.url("/00000000-0000-4000-8000-000000000000")).status_code == 404
    assert api.client.delete(api.url("/not-a-uuid")).status_code == 404


def test_cancel_asks_authorize(make_api: MakeApi) -> None:
    api = make_api(authorize=lambda request, project_id: project_id != "locked")
    job_id = api.client.post(api.url("/"), json=chapter_request(project="locked")).json().get("jobId")
    assert job_id is None  # submitting to the locked project is refused too
    open_id = api.client.post(api.url("/"), json=chapter_request(project="open")).json()["jobId"]
    api.runtime.store.update(open_id, project_id="locked")

    answer = api.client.delete(api.url(f"/{open_id}"))

    assert answer.status_code == 403
    assert api.runtime.store.get(open_id).state is JobState.QUEUED
