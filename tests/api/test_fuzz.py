"""Thousands of malformed requests: never a 5xx, always a JSON error in the documented shape, still alive after.

Every answer also goes through the OpenAPI checker (status documented,
headers, body schema, X-Request-ID), and every body the API accepts must
satisfy the document's request schema.
"""

from __future__ import annotations

import copy
import json
import re
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from api_support import MOUNT, Api, OpenApiChecker, TestClient, checker, make_api, store_succeeded_job  # noqa: F401 - fixtures
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

TOKEN = "fuzz-token-0123456789"
KEY = "fuzz-signing-key"
FUZZ = settings(
    max_examples=1200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

RICH_REQUEST: dict[str, Any] = {
    "jobId": "123e4567-e89b-42d3-a456-426614174000",
    "projectId": "project-1",
    "requestId": "req-1",
    "dryRun": False,
    "previewRequest": {
        "chapterId": "chapter-1",
        "output": {"width": 320, "height": 180, "fps": 10},
        "steps": [
            {"id": "one", "durationMs": 500, "title": "One", "text": "Body", "asset": "cover", "background": "#102030"},
            {"id": "two", "durationMs": 700},
        ],
        "assets": [
            {"id": "cover", "type": "image", "uri": "images/cover.png", "sha256": "a" * 64},
            {"id": "voice", "type": "audio", "uri": "data:audio/wav;base64,UklGRg=="},
        ],
        "audio": {"asset": "voice", "volume": 1.0, "fadeInMs": 0, "fadeOutMs": 100},
    },
}

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**40), 10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(["", "#fff", "preview", "image", "../x", "/etc/passwd", "file:///x", "data:,", "\u0000", "\ud800"])
)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=15
)


def _slots(node: Any, found: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Every (container, key) of a JSON document."""
    if isinstance(node, dict):
        for key, value in node.items():
            found.append((node, key))
            _slots(value, found)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.append((node, index))
            _slots(value, found)
    return found


@st.composite
def mutated_requests(draw: st.DrawFn) -> Any:
    """A valid request with one to three fields replaced, removed or added: deep validation paths."""
    body = copy.deepcopy(RICH_REQUEST)
    if draw(st.booleans()):
        del body["jobId"]
    for _ in range(draw(st.integers(1, 3))):
        slots = _slots(body, [])
        if not slots:
            break
        container, key = draw(st.sampled_from(slots))
        action = draw(st.sampled_from(["replace", "remove", "add"]))
        if action == "replace":
            container[key] = draw(json_values)
        elif action == "remove":
            del container[key]
        elif isinstance(container, dict):
            container[draw(st.text(max_size=12))] = draw(json_values)
        else:
            container.append(draw(json_values))
    return body


@st.composite
def raw_bodies(draw: st.DrawFn) -> bytes:
    """Bodies that are not (quite) JSON: bytes, broken UTF-8, deep nesting, huge or special numbers."""
    valid = json.dumps(RICH_REQUEST).encode()
    kind = draw(st.sampled_from(["bytes", "bad-utf8", "nesting", "number", "constant", "truncated", "duplicate", "bom"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "bad-utf8":
        at = draw(st.integers(0, len(valid) - 1))
        return valid[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"])) + valid[at:]
    if kind == "nesting":
        depth = draw(st.integers(500, 200_000))
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
        return opener * depth + b"1" + closer * draw(st.sampled_from([0, depth]))
    if kind == "number":
        digits = draw(st.integers(300, 6000))
        number = draw(st.sampled_from([b"9" * digits, b"1e" + b"9" * 6, b"-0.0", b"1E400", b"0." + b"0" * digits + b"1"]))
        return b'{"projectId": "p", "previewRequest": {"chapterId": "c", "steps": [{"id": "s", "durationMs": ' + number + b"}]}}"
    if kind == "constant":
        return b'{"previewRequest": {"audio": {"volume": ' + draw(st.sampled_from([b"NaN", b"Infinity", b"-Infinity"])) + b"}}}"
    if kind == "truncated":
        return valid[: draw(st.integers(0, len(valid) - 1))]
    if kind == "duplicate":
        return b'{"projectId": "a", "projectId": "b"}'
    return b"\xef\xbb\xbf" + valid


bodies = st.one_of(
    mutated_requests().map(lambda value: json.dumps(value).encode()),
    json_values.map(lambda value: json.dumps(value).encode()),
    raw_bodies(),
)
header_text = st.text(st.characters(codec="latin-1", exclude_characters="\r\n\x00"), max_size=60).map(
    lambda text: text.strip().encode("latin-1")
)
content_types = st.one_of(
    st.sampled_from([
        b"application/json", b"application/json; charset=utf-8", b"application/json;charset=UTF-16",
        b"application/problem+json", b"text/json", b"text/plain", b"application/x-www-form-urlencoded",
        b"multipart/form-data; boundary=--x", b"", b"application/", b"/json", b";;;", b"application/json; charset",
    ]),
    header_text,
)


@pytest.fixture
def fuzzed(make_api: Callable[..., Api], tmp_path: Path) -> Iterator[tuple[Api, TestClient, str]]:
    api = make_api(api_token=TOKEN, signing_key=KEY, queue_max=1_000_000, max_body_bytes=300_000)
    job_id = store_succeeded_job(api.runtime, tmp_path, bytes(range(256)) * 20)
    with api.client as client:
        yield api, client, job_id
        # Still alive and ready after all of it
        assert client.get(f"{MOUNT}/healthz").json() == {"status": "ok"}
        assert client.get(f"{MOUNT}/readyz").status_code == 200


def assert_well_formed(answer: Any, method: str = "POST") -> None:
    assert answer.status_code < 500, answer.text[:500]
    if answer.status_code >= 400 and method != "HEAD":
        assert answer.headers["content-type"] == "application/json"
        error = answer.json()["error"]
        assert error["code"] and error["message"]


@FUZZ
@given(
    body=bodies,
    content_type=st.one_of(st.just(b"application/json"), content_types, st.none()),
    content_length=st.one_of(st.none(), st.sampled_from([b"abc", b"-5", b"0", b"99999999999999999999", b" 12 ", b"1e3"])),
    request_id=st.one_of(st.none(), header_text),
)
def test_malformed_bodies_and_headers(
    fuzzed: tuple[Api, TestClient, str],
    checker: OpenApiChecker,
    body: bytes,
    content_type: bytes | None,
    content_length: bytes | None,
    request_id: bytes | None,
) -> None:
    _, client, _ = fuzzed
    headers: dict[str, bytes] = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if content_length is not None:
        headers["Content-Length"] = content_length
    if request_id is not None:
        headers["X-Request-ID"] = request_id

    answer = client.post(f"{MOUNT}/", content=body, headers=headers)

    assert_well_formed(answer)
    if answer.status_code in (200, 202):
        checker.validate_schema(json.loads(body), "JobRequest")  # the document never refuses what the API takes
    if request_id is not None and answer.status_code in (400, 413, 415, 422):  # refused before the body's requestId counts
        sent = request_id.decode("latin-1")
        if re.fullmatch(r"[\x21-\x7e]{1,128}", sent):
            assert answer.headers["x-request-id"] == sent
        else:
            assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["x-request-id"])


segments = st.one_of(
    st.sampled_from(["status", "artifact", "healthz", "readyz", "openapi.json", "", "%2e%2e", "..%2f..%2fetc", "%2F", "%00"]),
    st.uuids().map(str),
    # No newline: the host's Mount pattern (".*") stops at one, and the host's own 404 is not the API's.
    st.text(st.characters(codec="utf-8", exclude_characters="\n"), max_size=16).map(
        lambda text: urllib.parse.quote(text, safe="")
    ),
)


@FUZZ
@given(
    method=st.sampled_from(["GET", "GET", "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
    path=st.lists(segments, max_size=4),
    use_job=st.sampled_from([None, "status", "artifact"]),
    query=st.dictionaries(
        st.sampled_from(["role", "expires", "signature", "x"]),
        st.text(max_size=20) | st.sampled_from(["video", "poster", "9999999999", "0"]),
        max_size=3,
    ),
    authorization=st.one_of(
        st.none(),
        st.just(f"Bearer {TOKEN}".encode()),
        st.sampled_from([b"Bearer ", b"Bearer wrong", b"Basic eDp5", b"bearer"]),
        header_text,
    ),
    byte_range=st.one_of(
        st.none(),
        st.sampled_from([b"bytes=0-0", b"bytes=-1", b"bytes=5-", b"bytes=9999999-", b"bytes=1-0", b"bytes=0-1,2-3"]),
        header_text,
    ),
    if_none_match=st.one_of(st.none(), st.just(b"*"), header_text),
    body=st.one_of(st.none(), bodies),
)
def test_random_requests(
    fuzzed: tuple[Api, TestClient, str],
    method: str,
    path: list[str],
    use_job: str | None,
    query: dict[str, str],
    authorization: bytes | None,
    byte_range: bytes | None,
    if_none_match: bytes | None,
    body: bytes | None,
) -> None:
    _, client, job_id = fuzzed
    target = f"{MOUNT}/{job_id}/{use_job}" if use_job else f"{MOUNT}/" + "/".join(path)
    headers = {
        name: value
        for name, value in (("Authorization", authorization), ("Range", byte_range), ("If-None-Match", if_none_match))
        if value is not None
    }
    if body is not None:
        headers["Content-Type"] = b"application/json"

    answer = client.request(method, target, params=query, headers=headers, content=body)

    assert_well_formed(answer, method)
    assert answer.headers.get("x-request-id")


def test_fuzz_strategies_reach_acceptance_and_every_kind_of_refusal(fuzzed: tuple[Api, TestClient, str]) -> None:
    """The strategies are not all noise: valid, 4xx of each kind are all produced (so the fuzz can fail)."""
    _, client, _ = fuzzed
    seen: set[int] = set()

    @settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(body=bodies)
    def probe(body: bytes) -> None:
        seen.add(client.post(f"{MOUNT}/", content=body, headers={"Content-Type": "application/json"}).status_code)

    probe()
    assert {202, 400, 422} <= seen, seen
