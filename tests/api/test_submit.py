"""POST /: content type, size, strict JSON, validation, idempotency, request ids, authorize, metrics."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from api_support import Api, LiveServer, checker, make_api  # noqa: F401 - fixtures
from conftest import chapter_request
from prometheus_client import REGISTRY

from preview_actors.store import JobState

MakeApi = Callable[..., Api]


def post_json(api: Api, body: Any, **headers: str) -> httpx.Response:
    return api.client.post(api.url("/"), content=json.dumps(body), headers={"Content-Type": "application/json", **headers})


def rejected(reason: str) -> float:
    return REGISTRY.get_sample_value("preview_jobs_rejected_total", {"reason": reason}) or 0.0


def submitted() -> float:
    return REGISTRY.get_sample_value("preview_jobs_submitted_total") or 0.0


def test_new_job_is_202_with_an_absolute_status_url(make_api: MakeApi) -> None:
    api = make_api()
    before = submitted()

    answer = post_json(api, chapter_request())

    assert answer.status_code == 202
    body = answer.json()
    assert body["state"] == "queued"
    assert body["statusUrl"] == f"http://testserver/api/preview/{body['jobId']}/status"
    assert answer.headers["location"] == body["statusUrl"]
    record = api.runtime.store.get(body["jobId"])
    assert record is not None and record.state is JobState.QUEUED and record.enqueued
    assert submitted() == before + 1
    # The queue depth is refreshed after the answer (a background task TestClient waits for).
    assert REGISTRY.get_sample_value("preview_queue_depth") == api.runtime.store.count_unfinished() == 1


def test_same_job_id_and_body_is_200_other_body_is_409(make_api: MakeApi) -> None:
    api = make_api()
    job_id = str(uuid.uuid4())
    first = post_json(api, chapter_request(jobId=job_id))
    before_submitted, before_conflicts = submitted(), rejected("conflict")

    # Same content again, even under another request id: the existing job
    again = post_json(api, chapter_request(jobId=job_id.upper(), requestId="retry-1"))
    # Other content under the same id: a conflict naming the field
    other = post_json(api, chapter_request(jobId=job_id, steps=3))

    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json() == first.json()
    assert other.status_code == 409
    assert other.json()["error"] == {
        "code": "job_conflict",
        "message": f"job {job_id} exists with a different request",
        "field": "jobId",
    }
    assert submitted() == before_submitted
    assert rejected("conflict") == before_conflicts + 1


@pytest.mark.parametrize(
    ("mutate", "field", "message"),
    [
        (
            lambda body: body["previewRequest"]["steps"][0].update(durationMs="3000"),
            "previewRequest.steps[0].durationMs",
            "must be an integer",
        ),
        (
            lambda body: body["previewRequest"]["steps"][1].update(durationMs=50),
            "previewRequest.steps[1].durationMs",
            "must be at least 100",
        ),
        (lambda body: body.update(surprise=1), "surprise", "unknown field"),
        (lambda body: body.pop("projectId"), "projectId", "is required"),
        (
            lambda body: body["previewRequest"]["steps"][0].update(asset="missing"),
            "previewRequest.steps[0].asset",
            "unknown asset 'missing'",
        ),
        (
            lambda body: body["previewRequest"].update(assets=[{"id": "a", "type": "image", "uri": "../etc/passwd"}]),
            "previewRequest.assets[0].uri",
            "'..' is not allowed in an asset path",
        ),
    ],
)
def test_invalid_request_is_422_naming_the_field(
    make_api: MakeApi, mutate: Callable[[dict], Any], field: str, message: str
) -> None:
    api = make_api()
    body = chapter_request()
    mutate(body)
    before = rejected("invalid")

    answer = post_json(api, body)

    assert answer.status_code == 422
    error = answer.json()["error"]
    assert (error["code"], error["field"], error["message"]) == ("invalid_request", field, message)
    assert {"field": field, "message": message} in error["errors"]
    assert rejected("invalid") == before + 1
    assert api.runtime.store.count_unfinished() == 0


def test_every_field_error_is_listed(make_api: MakeApi) -> None:
    api = make_api()
    body = chapter_request()
    body["previewRequest"]["steps"][0]["durationMs"] = True
    body["previewRequest"]["steps"][1]["title"] = 7

    error = post_json(api, body).json()["error"]

    assert [e["field"] for e in error["errors"]] == [
        "previewRequest.steps[0].durationMs",
        "previewRequest.steps[1].title",
    ]
    assert error["message"] == "must be an integer (and 1 more)"


def test_type_errors_and_limit_errors_are_listed_together(make_api: MakeApi) -> None:
    api = make_api()
    body = chapter_request()
    body["projectId"] = "has space"  # a limit (pattern)
    body["previewRequest"]["steps"][0]["durationMs"] = "500"  # a type error
    body["previewRequest"]["steps"][1]["asset"] = "missing"  # a reference

    error = post_json(api, body).json()["error"]

    assert (error["field"], error["message"]) == ("previewRequest.steps[0].durationMs", "must be an integer (and 2 more)")
    assert [e["field"] for e in error["errors"]] == [
        "previewRequest.steps[0].durationMs",
        "projectId",
        "previewRequest.steps[1].asset",
    ]


def test_at_most_50_errors_are_listed(make_api: MakeApi) -> None:
    api = make_api()
    body = chapter_request(steps=40)
    for step in body["previewRequest"]["steps"]:  # type: ignore[index]
        step.update(durationMs="500", background="red")  # a type error and a bad colour each: 80 problems

    error = post_json(api, body).json()["error"]

    assert len(error["errors"]) == 50
    assert error["message"] == "must be an integer (and 79 more)"
    assert error["errors"][0] == {"field": "previewRequest.steps[0].durationMs", "message": "must be an integer"}
    assert error["errors"][-1]["field"] == "previewRequest.steps[9].background"


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json; charset=latin-1",
        "application/+json",
    ],
)
def test_not_json_is_415(make_api: MakeApi, content_type: str | None) -> None:
    api = make_api()
    headers = {} if content_type is None else {"Content-Type": content_type}
    before = rejected("not_json")

    answer = api.client.post(api.url("/"), content=json.dumps(chapter_request()), headers=headers)

    assert answer.status_code == 415
    assert answer.json()["error"]["code"] == "not_json"
    assert rejected("not_json") == before + 1


@pytest.mark.parametrize("content_type", ["application/json; charset=UTF-8", "application/vnd.preview+json", "Application/JSON"])
def test_json_media_types_are_accepted(make_api: MakeApi, content_type: str) -> None:
    api = make_api()
    answer = api.client.post(api.url("/"), content=json.dumps(chapter_request()), headers={"Content-Type": content_type})
    assert answer.status_code == 202


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'{"projectId": NaN}', "NaN is not a JSON number"),
        (b'{"projectId": Infinity}', "Infinity is not a JSON number"),
        (b'{"projectId": -Infinity}', "-Infinity is not a JSON number"),
        (b'{"projectId": 1e400}', "out of range"),
        (b'{"projectId": "a", "projectId": "b"}', "duplicate key 'projectId'"),
        (b'{"projectId": "\xff"}', "not valid UTF-8 (byte 15)"),
        (b"\xef\xbb\xbf{}", "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"n": ' + b"9" * 5000 + b"}", "not valid JSON"),
        (b"", "not valid JSON"),
        (b'{"a": 1} trailing', "not valid JSON"),
    ],
)
def test_invalid_json_is_400(make_api: MakeApi, body: bytes, fragment: str) -> None:
    api = make_api(max_body_bytes=400_000)

    answer = api.client.post(api.url("/"), content=body, headers={"Content-Type": "application/json"})

    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "invalid_json"
    assert fragment in error["message"]


def test_body_over_the_limit_is_413_by_content_length_before_reading(make_api: MakeApi) -> None:
    api = make_api(max_body_bytes=2048)
    before = rejected("too_large")

    declared = api.client.post(
        api.url("/"), content=b"{}", headers={"Content-Type": "application/json", "Content-Length": "2049"}
    )
    # A Content-Length that lies low is no way around the limit: the bytes are counted.
    lying = api.client.post(
        api.url("/"), content=b" " * 5000 + b"{}", headers={"Content-Type": "application/json", "Content-Length": "10"}
    )
    exact = api.client.post(api.url("/"), content=b" " * (2048 - 2) + b"{}", headers={"Content-Type": "application/json"})

    assert declared.status_code == lying.status_code == 413
    assert declared.json()["error"] == {"code": "too_large", "message": "the body must be at most 2048 bytes"}
    assert exact.status_code == 422  # within the limit: parsed and judged
    assert rejected("too_large") == before + 2


@pytest.mark.parametrize("value", [b"abc", b"-1", b"1.5", "１２".encode(), b"", b"0x10"])  # noqa: RUF001 - fullwidth digits
def test_bogus_content_length_is_400(make_api: MakeApi, value: bytes) -> None:
    api = make_api()
    answer = api.client.post(api.url("/"), content=b"{}", headers={"Content-Type": "application/json", "Content-Length": value})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "bad_request"


def test_body_over_the_limit_is_413_over_http_with_and_without_content_length(make_api: MakeApi) -> None:
    api = make_api(max_body_bytes=4096)
    body = json.dumps(chapter_request(steps=1, title="x" * 5000)).encode()

    def chunks() -> Any:
        for start in range(0, len(body), 1000):
            yield body[start : start + 1000]

    with LiveServer(api.app) as server, httpx.Client(base_url=server.url) as client:
        with_length = client.post("/", content=body, headers={"Content-Type": "application/json"})
        chunked = client.post("/", content=chunks(), headers={"Content-Type": "application/json"})

    assert "content-length" in with_length.request.headers
    assert chunked.request.headers["transfer-encoding"] == "chunked"
    for answer in (with_length, chunked):
        assert answer.status_code == 413
        assert answer.json()["error"]["code"] == "too_large"


def test_request_id_from_header_body_or_generated(make_api: MakeApi) -> None:
    api = make_api()

    from_header = post_json(api, chapter_request(), **{"X-Request-ID": "req-from-header"})
    from_body = post_json(api, chapter_request(steps=3, requestId="req-from-body"), **{"X-Request-ID": "ignored"})
    invalid_header = post_json(api, chapter_request(steps=4), **{"X-Request-ID": "has spaces"})
    too_long = post_json(api, chapter_request(steps=5), **{"X-Request-ID": "x" * 129})
    generated = post_json(api, chapter_request(steps=6))

    assert from_header.headers["x-request-id"] == "req-from-header"
    assert api.runtime.store.get(from_header.json()["jobId"]).request_id == "req-from-header"
    assert from_body.headers["x-request-id"] == "req-from-body"
    assert api.runtime.store.get(from_body.json()["jobId"]).request_id == "req-from-body"
    ids = [answer.headers["x-request-id"] for answer in (invalid_header, too_long, generated)]
    assert all(len(value) == 32 and int(value, 16) >= 0 for value in ids)
    assert len(set(ids)) == 3
    assert api.runtime.store.get(generated.json()["jobId"]).request_id == ids[2]


def test_request_id_on_errors_and_other_routes(make_api: MakeApi) -> None:
    api = make_api()
    for answer in (
        api.client.get(api.url("/healthz"), headers={"X-Request-ID": "probe-1"}),
        api.client.get(api.url("/no/such/path"), headers={"X-Request-ID": "probe-1"}),
        api.client.put(api.url("/"), headers={"X-Request-ID": "probe-1"}),
        api.client.post(api.url("/"), content=b"{", headers={"X-Request-ID": "probe-1", "Content-Type": "application/json"}),
    ):
        assert answer.headers["x-request-id"] == "probe-1"
    assert api.client.put(api.url("/")).json()["error"]["code"] == "method_not_allowed"


def test_request_id_reaches_the_logs(make_api: MakeApi, caplog: pytest.LogCaptureFixture) -> None:
    from preview_actors.logs import ContextFilter

    api = make_api()
    caplog.handler.addFilter(ContextFilter())
    caplog.set_level("INFO", logger="preview_actors.submit")

    answer = post_json(api, chapter_request(requestId="logged-id"))

    queued = [record for record in caplog.records if record.getMessage().startswith("Job ") and "queued" in record.getMessage()]
    assert [record.requestId for record in queued] == ["logged-id"]  # type: ignore[attr-defined]
    assert answer.headers["x-request-id"] == "logged-id"


@pytest.mark.parametrize("asynchronous", [False, True])
def test_authorize_is_asked_with_the_body_project_after_validation(make_api: MakeApi, asynchronous: bool) -> None:
    asked: list[str] = []

    def rule(request: Any, project_id: str) -> bool:
        asked.append(project_id)
        return project_id == "allowed"

    async def async_rule(request: Any, project_id: str) -> bool:
        return rule(request, project_id)

    api = make_api(authorize=async_rule if asynchronous else rule)
    before = rejected("forbidden")

    invalid = post_json(api, {"projectId": "allowed"})
    refused = post_json(api, chapter_request(project="other"))
    allowed = post_json(api, chapter_request(project="allowed"))

    assert invalid.status_code == 422
    assert refused.status_code == 403
    assert refused.json()["error"] == {"code": "forbidden", "message": "not allowed to access project 'other'"}
    assert allowed.status_code == 202
    assert asked == ["other", "allowed"]
    assert rejected("forbidden") == before + 1
    assert api.runtime.store.count_unfinished() == 1


def test_queue_full_is_429_with_retry_after(make_api: MakeApi) -> None:
    api = make_api(queue_max=1)
    before = rejected("queue_full")
    assert post_json(api, chapter_request()).status_code == 202

    answer = post_json(api, chapter_request(steps=3))

    assert answer.status_code == 429
    assert int(answer.headers["retry-after"]) > 0
    assert answer.json()["error"]["code"] == "queue_full"
    assert rejected("queue_full") == before + 1
    assert REGISTRY.get_sample_value("preview_queue_depth") == 1


def test_unexpected_error_is_a_json_500_with_the_request_id(make_api: MakeApi) -> None:
    def broken(request: Any, project_id: str) -> bool:
        raise RuntimeError("the host's rule is broken")

    api = make_api(authorize=broken, raise_server_exceptions=False)

    answer = post_json(api, chapter_request(requestId="req-500"))

    assert answer.status_code == 500
    assert answer.json() == {"error": {"code": "internal_error", "message": "internal error"}}
    assert answer.headers["x-request-id"] == "req-500"
