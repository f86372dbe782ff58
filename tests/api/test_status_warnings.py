"""``warnings`` in the status object over HTTP: on every broker, for old records, in the documents.

Every answer is checked against ``openapi.json`` by the client; the
pipeline side (record, metric, malformed warnings) is ``tests/test_warnings.py``.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from api_support import Api, OpenApiChecker, checker, make_api  # noqa: F401 - fixtures
from conftest import REPO, chapter_request, running_worker, wait_until

from preview_actors.render_report import MAX_MESSAGE_CHARS, MAX_WARNINGS, RenderWarning
from preview_actors.store import JobRecord, JobState
from preview_api.openapi import load_document

MakeApi = Callable[..., Api]

#: A font gap on the first step, as the ffmpeg renderer reports it.
MISSING_GLYPHS = {"code": "missing_glyphs", "message": "step 'step-0': no installed font covers U+E000", "step": "step-0"}


def finished_status(api: Api, job_id: str) -> dict[str, Any]:
    """The job's status document once it is finished (fails at the deadline)."""

    def finished() -> dict[str, Any] | None:
        answer = api.client.get(api.url(f"/{job_id}/status"))
        assert answer.status_code == 200, answer.text
        document: dict[str, Any] = answer.json()
        return document if document["state"] in ("succeeded", "failed", "cancelled") else None

    return wait_until(finished, timeout_s=60, what=f"job {job_id} to finish")


def test_status_over_http_carries_the_warnings(
    make_api: MakeApi, broker_kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the API and a worker on this broker, and a renderer that warns
    api = make_api(broker_kind)
    monkeypatch.setenv("PREVIEW_MOCK_WARNINGS", json.dumps([MISSING_GLYPHS]))
    with running_worker(api.runtime, threads=2):
        # When a dry run is submitted over HTTP, then (the renderer quiet again) a full render
        warned = api.client.post(api.url("/"), json=chapter_request(dryRun=True))
        assert warned.status_code == 202, warned.text
        first = finished_status(api, warned.json()["jobId"])
        monkeypatch.delenv("PREVIEW_MOCK_WARNINGS")
        quiet = api.client.post(api.url("/"), json=chapter_request(steps=3))
        assert quiet.status_code == 202, quiet.text
        second = finished_status(api, quiet.json()["jobId"])

    # Then the first status lists the warning, the second an empty list
    assert first["state"] == "succeeded", first["error"]
    assert first["warnings"] == [MISSING_GLYPHS]
    assert second["state"] == "succeeded", second["error"]
    assert second["warnings"] == []


def test_an_old_redis_record_shows_an_empty_list(make_api: MakeApi) -> None:
    # Given a job hash written by the previous release: no warnings field
    api = make_api("redis")
    store = api.runtime.store
    job_id = str(uuid.uuid4())
    store.create(
        JobRecord(job_id=job_id, project_id="project-1", request_id="r", content_sha256="0" * 64, request={}, enqueued=True)
    )
    store.client.hdel(store.job_key(job_id), "warnings")

    status = api.client.get(api.url(f"/{job_id}/status"))

    assert status.status_code == 200, status.text
    assert status.json()["warnings"] == []


def test_the_most_warnings_a_job_keeps_fit_the_document(make_api: MakeApi, checker: OpenApiChecker) -> None:
    api = make_api()
    job_id = str(uuid.uuid4())
    warnings = tuple(RenderWarning("missing_glyphs", "é" * MAX_MESSAGE_CHARS, "step-0") for _ in range(MAX_WARNINGS))
    api.runtime.store.create(
        JobRecord(
            job_id=job_id, project_id="p", request_id="r", content_sha256="0" * 64, request={},
            state=JobState.HASHING, warnings=warnings,
        )
    )

    status = api.client.get(api.url(f"/{job_id}/status"))  # checked against openapi.json

    assert status.status_code == 200 and len(status.json()["warnings"]) == MAX_WARNINGS
    assert checker.checked == 1


def test_the_document_requires_warnings_as_the_worker_bounds_them() -> None:
    schemas = load_document()["components"]["schemas"]
    status = schemas["JobStatus"]
    assert "warnings" in status["required"]
    assert status["properties"]["warnings"]["maxItems"] == MAX_WARNINGS
    assert schemas["RenderWarning"]["properties"]["message"]["maxLength"] == MAX_MESSAGE_CHARS


def test_the_readme_documents_warnings_with_a_status_example(checker: OpenApiChecker) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    examples = [
        json.loads(block)
        for block in re.findall(r"```json\n(.*?)```", readme, flags=re.DOTALL)
        if '"jobId"' in block and '"warnings"' in block
    ]
    assert len(examples) == 1, "the README shows one status example, with warnings"
    checker.validate_schema(examples[0], "JobStatus")
    assert examples[0]["warnings"][0]["code"] == "missing_glyphs"
    assert re.search(r"\| `GET /\{jobId\}/status` \| 200 `\{[^`]*\bwarnings\b", readme), "the routes table lists warnings"
    assert "`preview_render_warnings_total{kind}`" in readme
    assert "PREVIEW_MOCK_WARNINGS" in readme
