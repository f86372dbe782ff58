"""GET /{jobId}/artifact: the access table, ranges, conditional requests, streaming."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from api_support import Api, checker, make_api, store_succeeded_job  # noqa: F401 - fixtures
from hypothesis import given, settings
from hypothesis import strategies as st

from preview_actors.store import JobRecord, JobState
from preview_api import signing
from preview_api.artifacts import CHUNK_BYTES, requested_ranges
from preview_api.errors import ApiError

MakeApi = Callable[..., Api]
TOKEN = "test-token-0123456789"
KEY = "signing-key-0123456789"
VIDEO = bytes(range(256)) * 40  # 10240 bytes, every offset distinguishable


def signed(job_id: str, role: str = "video", *, expires: int | None = None, key: str = KEY) -> dict[str, str]:
    expires = int(time.time()) + 600 if expires is None else expires
    return {"role": role, "expires": str(expires), "signature": signing.signature(key, job_id, role, expires)}


@pytest.fixture
def api(make_api: MakeApi) -> Api:
    return make_api(api_token=TOKEN, signing_key=KEY)


@pytest.fixture
def job(api: Api, tmp_path: Path) -> str:
    return store_succeeded_job(api.runtime, tmp_path, VIDEO)


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- who may download -----------------------------------------------------------


def test_access_table(api: Api, job: str, tmp_path: Path) -> None:
    other_job = store_succeeded_job(api.runtime, tmp_path, b"other video")
    rendering = store_succeeded_job(api.runtime, tmp_path, b"x", state=JobState.RENDERING)
    url = api.url(f"/{job}/artifact")
    tampered = signed(job)
    tampered["expires"] = str(int(tampered["expires"]) + 3600)
    cases: list[tuple[str, str, dict[str, str], dict[str, str], int, str | None]] = [
        ("no credentials", url, {}, {}, 401, "unauthorized"),
        ("basic auth", url, {}, {"Authorization": "Basic dXNlcjpwYXNz"}, 401, "unauthorized"),
        ("empty bearer", url, {}, {"Authorization": "Bearer "}, 401, "unauthorized"),
        ("bad token", url, {}, bearer("wrong"), 403, "invalid_token"),
        ("non-ASCII token", url, {}, {"Authorization": "Bearer t\u00e9st".encode("latin-1")}, 403, "invalid_token"),  # type: ignore[dict-item]
        ("good token", url, {}, bearer(), 200, None),
        ("good token, lowercase scheme", url, {}, {"Authorization": f"bearer {TOKEN}"}, 200, None),
        ("good signature", url, signed(job), {}, 200, None),
        ("good signature, poster", url, signed(job, "poster"), {}, 200, None),
        ("expired signature", url, signed(job, expires=int(time.time()) - 1), {}, 403, "signature_expired"),
        ("signature of another job", url, signed(other_job), {}, 403, "invalid_signature"),
        ("poster signature used on the video", url, {**signed(job, "poster"), "role": "video"}, {}, 403, "invalid_signature"),
        (
            "poster signature, no role (video)",
            url,
            {k: v for k, v in signed(job, "poster").items() if k != "role"},
            {},
            403,
            "invalid_signature",
        ),
        ("tampered expires", url, tampered, {}, 403, "invalid_signature"),
        ("other key", url, signed(job, key="another key"), {}, 403, "invalid_signature"),
        ("signature without expires", url, {"signature": signed(job)["signature"]}, {}, 403, "invalid_signature"),
        (
            "uppercase signature",
            url,
            {**signed(job), "signature": signed(job)["signature"].upper()},
            {},
            403,
            "invalid_signature",
        ),
        ("bad signature wins over a good token", url, signed(other_job), bearer(), 403, "invalid_signature"),
        ("unknown role", url, {"role": "plan"}, bearer(), 400, "invalid_parameter"),
        ("path tricks", api.url("/..%2f..%2fetc/passwd/artifact"), {}, bearer(), 404, None),
        ("encoded slash in id", api.url(f"/{job[:8]}%2F{job[9:]}/artifact"), {}, bearer(), 404, None),
        ("dot segments", api.url("/%2e%2e/artifact"), {}, bearer(), 404, "job_not_found"),
        ("non-UUID id", api.url("/not-a-job/artifact"), {}, bearer(), 404, "job_not_found"),
        ("unknown job", api.url(f"/{uuid.uuid4()}/artifact"), {}, bearer(), 404, "job_not_found"),
        ("not-ready job", api.url(f"/{rendering}/artifact"), {}, bearer(), 409, "not_ready"),
    ]
    failures = []
    for name, target, params, headers, status, code in cases:
        answer = api.client.get(target, params=params, headers=headers)
        got_code = answer.json()["error"]["code"] if answer.status_code >= 400 else None
        if answer.status_code != status or (code is not None and got_code != code):
            failures.append(f"{name}: {answer.status_code} {got_code}, expected {status} {code}")
        if status == 200:
            expected = VIDEO if params.get("role", "video") == "video" else b"\xff\xd8\xff\xe0 poster"
            assert answer.content == expected, name
    assert not failures, "\n".join(failures)


def test_401_challenges_for_a_bearer_token(api: Api, job: str) -> None:
    answer = api.client.get(api.url(f"/{job}/artifact"))
    assert answer.headers["www-authenticate"].startswith("Bearer ")


def test_downloads_disabled_without_token_and_key(make_api: MakeApi, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("WARNING", logger="preview_api.app")
    api = make_api()
    job = store_succeeded_job(api.runtime, tmp_path, VIDEO)

    for params, headers in (({}, {}), ({}, bearer()), (signed(job), {})):
        answer = api.client.get(api.url(f"/{job}/artifact"), params=params, headers=headers)
        assert answer.status_code == 403
        assert answer.json()["error"]["code"] == "downloads_disabled"
    assert any("downloads are disabled" in record.getMessage() for record in caplog.records)


def test_signed_urls_refused_without_a_signing_key(make_api: MakeApi, tmp_path: Path) -> None:
    api = make_api(api_token=TOKEN)
    job = store_succeeded_job(api.runtime, tmp_path, VIDEO)

    answer = api.client.get(api.url(f"/{job}/artifact"), params=signed(job))

    assert answer.status_code == 403 and answer.json()["error"]["code"] == "invalid_signature"
    assert api.client.get(api.url(f"/{job}/artifact"), headers=bearer()).status_code == 200


def test_token_downloads_ask_authorize_signed_ones_do_not(make_api: MakeApi, tmp_path: Path) -> None:
    asked: list[str] = []
    api = make_api(api_token=TOKEN, signing_key=KEY, authorize=lambda request, project: asked.append(project) or False)
    job = store_succeeded_job(api.runtime, tmp_path, VIDEO, project_id="p-1")

    by_token = api.client.get(api.url(f"/{job}/artifact"), headers=bearer())
    by_signature = api.client.get(api.url(f"/{job}/artifact"), params=signed(job))

    assert by_token.status_code == 403 and by_token.json()["error"]["code"] == "forbidden"
    assert by_signature.status_code == 200
    assert asked == ["p-1"]


def test_dry_run_video_is_not_ready_but_its_poster_downloads(api: Api, tmp_path: Path) -> None:
    job = store_succeeded_job(api.runtime, tmp_path, None)

    video = api.client.get(api.url(f"/{job}/artifact"), headers=bearer())
    poster = api.client.get(api.url(f"/{job}/artifact"), params={"role": "poster"}, headers=bearer())

    assert video.status_code == 409 and video.json()["error"]["code"] == "not_ready"
    assert poster.status_code == 200 and poster.headers["content-type"] == "image/jpeg"


def test_a_record_pointing_outside_data_dir_is_never_served(api: Api, tmp_path: Path) -> None:
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(b"not yours")
    job_id = str(uuid.uuid4())
    entry = {"sha256": "0" * 64, "size": 9, "contentType": "video/mp4", "path": "../secret.mp4"}
    api.runtime.store.create(
        JobRecord(job_id, "p", "r", "0" * 64, {}, state=JobState.SUCCEEDED, artifact={"video": entry}, enqueued=True)
    )

    answer = api.client.get(api.url(f"/{job_id}/artifact"), headers=bearer())

    assert answer.status_code == 404 and answer.json()["error"]["code"] == "artifact_missing"


def test_a_vanished_file_is_404(api: Api, job: str) -> None:
    record = api.runtime.store.get(job)
    os.unlink(api.runtime.artifacts.open(record.artifact["video"]["path"]))

    answer = api.client.get(api.url(f"/{job}/artifact"), headers=bearer())

    assert answer.status_code == 404 and answer.json()["error"]["code"] == "artifact_missing"


# --- what is sent ---------------------------------------------------------------


def test_whole_file_headers(api: Api, job: str) -> None:
    answer = api.client.get(api.url(f"/{job}/artifact"), headers=bearer())

    sha256 = hashlib.sha256(VIDEO).hexdigest()
    assert answer.status_code == 200
    assert answer.content == VIDEO
    assert answer.headers["etag"] == f'"{sha256}"'
    assert answer.headers["accept-ranges"] == "bytes"
    assert answer.headers["content-length"] == str(len(VIDEO))
    assert answer.headers["content-type"] == "video/mp4"
    assert answer.headers["content-disposition"] == f'inline; filename="{job}-video.mp4"'


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=5000-5099", 5000, 5099),
        ("bytes=-100", len(VIDEO) - 100, len(VIDEO) - 1),
        ("bytes=10000-", 10000, len(VIDEO) - 1),
        ("bytes=10000-999999", 10000, len(VIDEO) - 1),
        ("bytes=-999999", 0, len(VIDEO) - 1),
        ("BYTES = 7 - 7", 7, 7),
    ],
)
def test_single_ranges_are_206(api: Api, job: str, header: str, first: int, last: int) -> None:
    answer = api.client.get(api.url(f"/{job}/artifact"), headers={**bearer(), "Range": header})

    assert answer.status_code == 206
    assert answer.content == VIDEO[first : last + 1]
    assert answer.headers["content-range"] == f"bytes {first}-{last}/{len(VIDEO)}"
    assert answer.headers["content-length"] == str(last - first + 1)


@pytest.mark.parametrize("header", ["bytes=10240-", "bytes=99999-100000", "bytes=-0"])
def test_unsatisfiable_ranges_are_416(api: Api, job: str, header: str) -> None:
    answer = api.client.get(api.url(f"/{job}/artifact"), headers={**bearer(), "Range": header})

    assert answer.status_code == 416
    assert answer.headers["content-range"] == f"bytes */{len(VIDEO)}"
    assert answer.json()["error"]["code"] == "range_not_satisfiable"


@pytest.mark.parametrize("header", ["bytes=9-3", "items=0-1", "bytes=", "bytes=-", "bytes=a-b", "0-1"])
def test_other_range_headers_get_the_whole_file(api: Api, job: str, header: str) -> None:
    answer = api.client.get(api.url(f"/{job}/artifact"), headers={**bearer(), "Range": header})
    assert answer.status_code == 200 and answer.content == VIDEO


def test_several_ranges_are_one_multipart_answer(api: Api, job: str) -> None:
    answer = api.client.get(api.url(f"/{job}/artifact"), headers={**bearer(), "Range": "bytes=5-6, 0-1, 1-2"})

    assert answer.status_code == 206
    media_type, _, boundary = answer.headers["content-type"].partition("; boundary=")
    assert media_type == "multipart/byteranges" and boundary
    assert answer.headers["content-length"] == str(len(answer.content))
    parts = answer.content.split(f"--{boundary}".encode())
    assert parts[0] == b"" and parts[-1] == b"--"
    heads_and_bodies = [part.strip(b"\r\n").split(b"\r\n\r\n", 1) for part in parts[1:-1]]
    assert [body for _, body in heads_and_bodies] == [VIDEO[0:3], VIDEO[5:7]]  # merged, in file order
    assert [b"Content-Range: bytes 0-2/10240" in head for head, _ in heads_and_bodies] == [True, False]
    assert all(b"Content-Type: video/mp4" in head for head, _ in heads_and_bodies)


def test_if_range_takes_the_last_modified_date_too(api: Api, job: str) -> None:
    url = api.url(f"/{job}/artifact")
    last_modified = api.client.get(url, headers=bearer()).headers["last-modified"]

    same_file = api.client.get(url, headers={**bearer(), "Range": "bytes=0-9", "If-Range": last_modified})
    weak = api.client.get(url, headers={**bearer(), "Range": "bytes=0-9", "If-Range": "W/" + same_file.headers["etag"]})

    assert same_file.status_code == 206 and same_file.content == VIDEO[:10]
    assert weak.status_code == 200 and weak.content == VIDEO  # If-Range compares strongly (RFC 9110 §13.1.5)


def test_an_unsatisfiable_range_is_not_checked_when_if_range_fails(api: Api, job: str) -> None:
    answer = api.client.get(api.url(f"/{job}/artifact"), headers={**bearer(), "Range": "bytes=99999-", "If-Range": '"older"'})
    assert answer.status_code == 200 and answer.content == VIDEO


def test_if_none_match_is_304_and_if_range_guards_ranges(api: Api, job: str) -> None:
    etag = f'"{hashlib.sha256(VIDEO).hexdigest()}"'
    url = api.url(f"/{job}/artifact")

    not_modified = api.client.get(url, headers={**bearer(), "If-None-Match": f'"other", W/{etag}'})
    star = api.client.get(url, headers={**bearer(), "If-None-Match": "*"})
    modified = api.client.get(url, headers={**bearer(), "If-None-Match": '"other"'})
    same_file = api.client.get(url, headers={**bearer(), "Range": "bytes=0-9", "If-Range": etag})
    changed_file = api.client.get(url, headers={**bearer(), "Range": "bytes=0-9", "If-Range": '"older"'})

    assert not_modified.status_code == star.status_code == 304
    assert not_modified.content == b"" and not_modified.headers["etag"] == etag
    assert modified.status_code == 200
    assert same_file.status_code == 206 and same_file.content == VIDEO[:10]
    assert changed_file.status_code == 200 and changed_file.content == VIDEO


def test_head_sends_headers_only(api: Api, job: str) -> None:
    answer = api.client.head(api.url(f"/{job}/artifact"), headers={**bearer(), "Range": "bytes=0-9"})
    assert answer.status_code == 206
    assert answer.headers["content-length"] == "10"
    assert answer.content == b""


def test_large_file_streams_in_chunks(api: Api, tmp_path: Path) -> None:
    data = os.urandom(5 * CHUNK_BYTES + 123)
    job = store_succeeded_job(api.runtime, tmp_path, data)
    url = api.url(f"/{job}/artifact")

    with api.client.stream("GET", url, headers=bearer()) as answer:
        chunks = list(answer.iter_raw())
    middle = api.client.get(url, headers={**bearer(), "Range": f"bytes={CHUNK_BYTES - 10}-{3 * CHUNK_BYTES + 10}"})

    assert b"".join(chunks) == data
    assert len(chunks) >= 6 and max(len(chunk) for chunk in chunks) <= CHUNK_BYTES
    assert middle.content == data[CHUNK_BYTES - 10 : 3 * CHUNK_BYTES + 11]


def test_a_file_shorter_than_its_record_is_an_error_not_a_short_answer(make_api: MakeApi, tmp_path: Path) -> None:
    api = make_api(api_token=TOKEN, raise_server_exceptions=False)
    job = store_succeeded_job(api.runtime, tmp_path, VIDEO)
    path = api.runtime.artifacts.open(api.runtime.store.get(job).artifact["video"]["path"])
    path.write_bytes(VIDEO[:100])

    answer = api.client.get(api.url(f"/{job}/artifact"), headers=bearer())

    assert answer.status_code == 500 and answer.json()["error"]["code"] == "internal_error"


# --- reading the Range header (Starlette's parser, our 416 and our "ignore the malformed") ---


@settings(max_examples=300, deadline=None)
@given(size=st.integers(0, 10_000), first=st.integers(0, 12_000), last=st.integers(0, 12_000) | st.none())
def test_requested_ranges_lie_within_the_file(size: int, first: int, last: int | None) -> None:
    header = f"bytes={first}-{'' if last is None else last}"
    try:
        parsed = requested_ranges(header, size)
    except ApiError as error:
        assert error.status_code == 416
        assert first >= size
        return
    if parsed is None:
        assert last is not None and last < first
        return
    assert parsed == [(first, min(size, size if last is None else last + 1))]  # half-open
    assert 0 <= first < parsed[0][1] <= size


@settings(max_examples=200, deadline=None)
@given(size=st.integers(0, 10_000), suffix=st.integers(0, 12_000))
def test_suffix_ranges_are_the_last_bytes(size: int, suffix: int) -> None:
    try:
        parsed = requested_ranges(f"bytes=-{suffix}", size)
    except ApiError:
        assert suffix == 0 or size == 0
        return
    assert parsed == [(max(0, size - suffix), size)]


@settings(max_examples=300, deadline=None)
@given(header=st.text(max_size=40))
def test_any_range_header_parses_or_is_ignored(header: str) -> None:
    try:
        parsed: Any = requested_ranges(header, 1000)
    except ApiError as error:
        assert error.status_code == 416
    else:
        assert parsed is None or all(0 <= start < end <= 1000 for start, end in parsed)
