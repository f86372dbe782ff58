"""GET /{jobId}/status: the status document, artifact links (signed or not), 404s, authorize."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from api_support import Api, checker, make_api, store_succeeded_job  # noqa: F401 - fixtures

from preview_actors.store import JobState
from preview_api import signing

MakeApi = Callable[..., Api]


def test_succeeded_job_has_signed_absolute_links_without_paths(make_api: MakeApi, tmp_path: Path) -> None:
    api = make_api(signing_key="k" * 32)
    job_id = store_succeeded_job(api.runtime, tmp_path, b"video bytes")

    started = time.time()
    status = api.client.get(api.url(f"/{job_id}/status")).json()

    assert status["state"] == "succeeded" and status["progress"] == 1.0
    assert set(status["artifact"]) == {"video", "poster"}
    video = status["artifact"]["video"]
    assert "path" not in video and "path" not in status["artifact"]["poster"]
    assert "container" not in status["artifact"]
    assert video["size"] == len(b"video bytes") and video["contentType"] == "video/mp4"
    url = urlsplit(video["url"])
    assert (url.scheme, url.netloc, url.path) == ("http", "testserver", f"/api/preview/{job_id}/artifact")
    query = parse_qs(url.query)
    expires = int(query["expires"][0])
    assert int(started) + signing.SIGNED_URL_LIFETIME_S <= expires <= time.time() + signing.SIGNED_URL_LIFETIME_S
    assert query["role"] == ["video"]
    assert query["signature"] == [signing.signature("k" * 32, job_id, "video", expires)]
    assert parse_qs(urlsplit(status["artifact"]["poster"]["url"]).query)["role"] == ["poster"]


def test_links_are_unsigned_without_a_signing_key(make_api: MakeApi, tmp_path: Path) -> None:
    api = make_api(api_token="t" * 20)
    job_id = store_succeeded_job(api.runtime, tmp_path, b"video bytes")

    video = api.client.get(api.url(f"/{job_id}/status")).json()["artifact"]["video"]

    assert video["url"] == f"http://testserver/api/preview/{job_id}/artifact?role=video"


def test_dry_run_has_a_poster_and_no_video(make_api: MakeApi, tmp_path: Path) -> None:
    api = make_api(signing_key="k" * 32)
    job_id = store_succeeded_job(api.runtime, tmp_path, None)

    status = api.client.get(api.url(f"/{job_id}/status")).json()

    assert status["dryRun"] is True
    assert set(status["artifact"]) == {"poster"}


def test_unfinished_job_has_no_links(make_api: MakeApi, tmp_path: Path) -> None:
    api = make_api(signing_key="k" * 32)
    job_id = store_succeeded_job(api.runtime, tmp_path, b"v", state=JobState.RENDERING)

    answer = api.client.get(api.url(f"/{job_id}/status"))

    assert answer.json()["state"] == "rendering" and answer.json()["artifact"] is None
    assert answer.headers["cache-control"] == "no-store"


def test_uppercase_id_finds_the_job(make_api: MakeApi, tmp_path: Path) -> None:
    api = make_api()
    job_id = store_succeeded_job(api.runtime, tmp_path, b"v")
    assert api.client.get(api.url(f"/{job_id.upper()}/status")).json()["jobId"] == job_id


@pytest.mark.parametrize(
    "job_id", [str(uuid.uuid4()), "not-a-uuid", "...", "%2e%2e", "a" * 500, "123e4567-e89b-42d3-a456-42661417400g"]
)
def test_unknown_or_malformed_id_is_404(make_api: MakeApi, job_id: str) -> None:
    api = make_api()
    seen: list[Any] = []
    original = api.runtime.store.get
    api.runtime.store.get = lambda key: seen.append(key) or original(key)  # type: ignore[method-assign]

    answer = api.client.get(api.url(f"/{job_id}/status"))

    assert answer.status_code == 404
    assert answer.json()["error"]["code"] in ("job_not_found", "not_found")
    # Only UUID-shaped ids ever reach the store.
    assert all(len(key) == 36 for key in seen)


def test_authorize_is_asked_with_the_job_project(make_api: MakeApi, tmp_path: Path) -> None:
    asked: list[str] = []
    api = make_api(authorize=lambda request, project: asked.append(project) or project == "mine")
    mine = store_succeeded_job(api.runtime, tmp_path, b"v", project_id="mine")
    theirs = store_succeeded_job(api.runtime, tmp_path, b"w", project_id="theirs")

    assert api.client.get(api.url(f"/{mine}/status")).status_code == 200
    refused = api.client.get(api.url(f"/{theirs}/status"))
    unknown = api.client.get(api.url(f"/{uuid.uuid4()}/status"))

    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert unknown.status_code == 404
    assert asked == ["mine", "theirs"]
