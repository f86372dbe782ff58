"""The job request model: structuring, validation, normalization and content hashing."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from preview_actors.errors import FieldError, ValidationError
from preview_actors.limits import Limits
from preview_actors.request import (
    OUTPUT_PRESETS,
    Asset,
    AudioTrack,
    JobRequest,
    OutputSettings,
    PreviewRequest,
    Step,
    UriError,
    UriKind,
    canonical_json,
    classify_uri,
    content_sha256,
    decode_data_uri,
    parse_job_request,
    parse_preview_request,
)

ALLOWED_HOSTS = frozenset({"cdn.example"})
JOB_ID = "6F9619FF-8B86-4D01-B42D-00C04FC964FF"


def full_body() -> dict[str, Any]:
    """A valid request using every field."""
    return {
        "jobId": JOB_ID,
        "projectId": "project-123",
        "requestId": "req-1",
        "dryRun": True,
        "previewRequest": {
            "chapterId": "chapter-1",
            "output": {"width": 1280, "height": 720, "fps": 30},
            "steps": [
                {
                    "id": "intro",
                    "durationMs": 3000,
                    "title": "Welcome",
                    "text": "Body text\n\twith a tab",
                    "asset": "cover",
                    "background": "#A0B",
                },
                {"id": "demo", "durationMs": 2000, "asset": "clip", "background": "#102030"},
            ],
            "assets": [
                {"id": "cover", "type": "image", "uri": "images/cover.png", "sha256": "ab" * 32},
                {"id": "clip", "type": "video", "uri": "https://CDN.example:8443/demo.mp4"},
                {"id": "narration", "type": "audio", "uri": "data:audio/wav;base64,UklGRg=="},
            ],
            "audio": {"asset": "narration", "volume": 1, "fadeInMs": 0, "fadeOutMs": 500},
        },
    }


def minimal_body() -> dict[str, Any]:
    return {
        "projectId": "p",
        "previewRequest": {"chapterId": "c", "steps": [{"id": "s", "durationMs": 1000}]},
    }


def parse(body: object, **kwargs: Any) -> JobRequest:
    return parse_job_request(body, allowed_hosts=ALLOWED_HOSTS, **kwargs)


# --- valid requests ------------------------------------------------------------


def test_full_request_is_structured_and_normalized() -> None:
    request = parse(full_body())

    assert request.job_id == JOB_ID.lower()
    assert request.dry_run is True
    preview = request.preview_request
    assert preview.output == OutputSettings(width=1280, height=720, fps=30, preset=None)
    assert preview.steps[0] == Step(
        id="intro",
        duration_ms=3000,
        title="Welcome",
        text="Body text\n\twith a tab",
        asset="cover",
        background="#aa00bb",
    )
    assert preview.steps[1].title is None
    assert preview.assets[2] == Asset(
        id="narration", type="audio", uri="data:audio/wav;base64,UklGRg==", sha256=None
    )
    assert preview.audio == AudioTrack(asset="narration", volume=1.0, fade_in_ms=0, fade_out_ms=500)
    assert type(preview.audio.volume) is float
    assert preview.total_duration_ms == 5000


def test_full_request_round_trips() -> None:
    request = parse(full_body())

    data = request.to_json()

    expected = full_body()
    expected["jobId"] = JOB_ID.lower()
    expected["previewRequest"]["steps"][0]["background"] = "#aa00bb"
    expected["previewRequest"]["steps"][1].update(title=None, text=None)
    expected["previewRequest"]["assets"][1]["sha256"] = None
    expected["previewRequest"]["assets"][2]["sha256"] = None
    expected["previewRequest"]["audio"]["volume"] = 1.0
    assert data == expected
    assert json.loads(json.dumps(data)) == data
    assert JobRequest.from_json(data) == request
    # The stored form is itself a valid body that parses to the same request.
    assert parse(data) == request


def test_defaults_are_filled_in() -> None:
    request = parse(minimal_body())

    assert request.to_json() == {
        "jobId": None,
        "projectId": "p",
        "requestId": None,
        "dryRun": False,
        "previewRequest": {
            "chapterId": "c",
            "output": "preview",
            "steps": [
                {
                    "id": "s",
                    "durationMs": 1000,
                    "title": None,
                    "text": None,
                    "asset": None,
                    "background": "#000000",
                }
            ],
            "assets": [],
            "audio": None,
        },
    }
    assert request.preview_request.output == OutputSettings(
        width=640, height=360, fps=24, preset="preview"
    )


@pytest.mark.parametrize("name", sorted(OUTPUT_PRESETS))
def test_output_presets(name: str) -> None:
    body = minimal_body()
    body["previewRequest"]["output"] = name

    output = parse(body).preview_request.output

    assert (output.width, output.height, output.fps) == OUTPUT_PRESETS[name]
    assert output.preset == name
    assert parse(body).to_json()["previewRequest"]["output"] == name


def test_null_is_accepted_for_optional_fields() -> None:
    body = minimal_body()
    body.update(jobId=None, requestId=None)
    body["previewRequest"].update(audio=None)
    body["previewRequest"]["steps"][0].update(title=None, text=None, asset=None)

    assert parse(body) == parse(minimal_body())


def test_bare_preview_request_paths_start_at_its_fields() -> None:
    preview = parse_preview_request(minimal_body()["previewRequest"])
    assert isinstance(preview, PreviewRequest)
    assert preview.steps[0].id == "s"

    with pytest.raises(ValidationError) as caught:
        parse_preview_request({"chapterId": "c", "steps": [{"id": "s", "durationMs": "1"}]})
    assert caught.value.errors == (FieldError("steps[0].durationMs", "must be an integer"),)


def test_every_problem_is_listed() -> None:
    body = full_body()
    body["projectId"] = 7
    body["previewRequest"]["steps"][0]["durationMs"] = "3000"
    body["previewRequest"]["steps"][1]["colour"] = "red"
    del body["previewRequest"]["assets"][0]["uri"]

    with pytest.raises(ValidationError) as caught:
        parse(body)

    assert caught.value.errors == (
        FieldError("projectId", "must be a string"),
        FieldError("previewRequest.steps[0].durationMs", "must be an integer"),
        FieldError("previewRequest.steps[1].colour", "unknown field"),
        FieldError("previewRequest.assets[0].uri", "is required"),
    )
    assert caught.value.field == "projectId"


def test_semantic_problems_are_all_listed() -> None:
    body = full_body()
    body["previewRequest"]["steps"][0]["durationMs"] = 10
    body["previewRequest"]["steps"][1]["asset"] = "nope"
    body["previewRequest"]["audio"]["volume"] = 3

    with pytest.raises(ValidationError) as caught:
        parse(body)

    assert [error.field for error in caught.value.errors] == [
        "previewRequest.steps[0].durationMs",
        "previewRequest.steps[1].asset",
        "previewRequest.audio.volume",
    ]


def test_type_errors_do_not_hide_the_other_problems() -> None:
    # Given a body with type errors and, elsewhere, values of the right type that break limits and references
    body = full_body()
    body["projectId"] = "has space"
    body["previewRequest"]["steps"][0]["durationMs"] = "3000"  # type
    body["previewRequest"]["steps"][1]["durationMs"] = 10  # limit
    body["previewRequest"]["steps"][1]["asset"] = "nope"  # reference
    body["previewRequest"]["assets"][0]["type"] = 4  # type
    body["previewRequest"]["assets"][1]["uri"] = "../x.mp4"  # refused uri
    body["previewRequest"]["audio"]["volume"] = "loud"  # type
    body["previewRequest"]["audio"]["fadeInMs"] = -1  # limit

    with pytest.raises(ValidationError) as caught:
        parse(body)

    # Then every problem is listed, the type errors first
    assert caught.value.errors == (
        FieldError("previewRequest.steps[0].durationMs", "must be an integer"),
        FieldError("previewRequest.assets[0].type", "must be a string"),
        FieldError("previewRequest.audio.volume", "must be a number"),
        FieldError("projectId", "must start with a letter or digit and contain only letters, digits, '.', '_', ':' and '-'"),
        FieldError("previewRequest.assets[1].uri", "'..' is not allowed in an asset path"),
        FieldError("previewRequest.steps[1].durationMs", "must be at least 100"),
        FieldError("previewRequest.steps[1].asset", "unknown asset 'nope'"),
        FieldError("previewRequest.audio.fadeInMs", "must be at least 0"),
    )
    assert caught.value.field == "previewRequest.steps[0].durationMs"


@pytest.mark.parametrize(
    ("mutate", "silent"),
    [
        # An asset whose id or kind is unknown: a step naming it may be right, so no "unknown asset".
        (lambda body: body["previewRequest"]["assets"][0].update(id=5), "previewRequest.steps[0].asset"),
        (lambda body: body["previewRequest"]["assets"].__setitem__(0, "cover"), "previewRequest.steps[0].asset"),
        (lambda body: body["previewRequest"].update(assets={"cover": {}}), "previewRequest.steps[0].asset"),
        (lambda body: body["previewRequest"]["assets"][2].update(type="sound"), "previewRequest.audio.asset"),
        # A duration of the wrong type: no total to compare the fades with.
        (lambda body: body["previewRequest"]["steps"][0].update(durationMs=None), "previewRequest.audio"),
        (lambda body: body["previewRequest"].update(steps="all of them"), "previewRequest.audio"),
    ],
)
def test_a_type_error_causes_no_second_error_about_what_it_hides(mutate: Callable[[dict[str, Any]], Any], silent: str) -> None:
    body = full_body()
    body["previewRequest"]["audio"]["fadeOutMs"] = 4000  # with the 5000 ms of steps: fine
    mutate(body)

    with pytest.raises(ValidationError) as caught:
        parse(body)

    assert len(caught.value.errors) == 1, caught.value.errors
    assert caught.value.errors[0].field != silent


def test_configured_limits_apply() -> None:
    body = full_body()
    limits = Limits(max_steps=1, max_title_chars=3, max_width=1024)

    with pytest.raises(ValidationError) as caught:
        parse(body, limits=limits)

    assert caught.value.errors == (
        FieldError("previewRequest.output.width", "must be at most 1024"),
        FieldError("previewRequest.steps", "must have at most 1 steps"),
        FieldError("previewRequest.steps[0].title", "must be at most 3 characters"),
    )


def test_a_preset_above_the_limits_is_named_at_output() -> None:
    body = minimal_body()
    body["previewRequest"]["output"] = "fhd"

    with pytest.raises(ValidationError) as caught:
        parse(body, limits=Limits(max_width=1280, max_height=720))

    assert [error.field for error in caught.value.errors] == ["previewRequest.output"] * 2
    assert "preset 'fhd' has width 1920" in caught.value.errors[0].message


def test_limits_refuse_inconsistent_values() -> None:
    with pytest.raises(ValueError, match="min_fps"):
        Limits(min_fps=30, max_fps=24)
    with pytest.raises(ValueError):
        Limits(max_steps=0)


# --- invalid requests: one row per problem -------------------------------------

Mutation = Callable[[dict[str, Any]], None]
_DELETE = object()


def _walk(body: dict[str, Any], path: str) -> tuple[Any, str | int]:
    keys: list[str | int] = [int(key) if key.isdigit() else key for key in path.split(".")]
    node: Any = body
    for key in keys[:-1]:
        node = node[key]
    return node, keys[-1]


def put(path: str, value: object) -> Mutation:
    """Set (or append, one past the end of a list) the value at a dotted path."""

    def mutate(body: dict[str, Any]) -> None:
        node, key = _walk(body, path)
        if value is _DELETE:
            del node[key]
        elif isinstance(node, list) and key == len(node):
            node.append(copy.deepcopy(value))
        else:
            node[key] = copy.deepcopy(value)

    return mutate


def drop(path: str) -> Mutation:
    return put(path, _DELETE)


def _steps(count: int, duration_ms: int = 1000) -> list[dict[str, Any]]:
    return [{"id": f"s{index}", "durationMs": duration_ms} for index in range(count)]


def _assets(count: int) -> list[dict[str, Any]]:
    return [{"id": f"a{index}", "type": "image", "uri": f"i/{index}.png"} for index in range(count)]


def _data_uri(size: int) -> str:
    return "data:image/png;base64," + base64.b64encode(b"\0" * size).decode()


PR = "previewRequest"
STEP0 = f"{PR}.steps.0"
ASSET0 = f"{PR}.assets.0"
AUDIO = f"{PR}.audio"

# (id, mutation, exact field path, message fragment)
INVALID: list[tuple[str, Mutation, str, str]] = [
    # strict types
    ("string-for-int", put(f"{STEP0}.durationMs", "3000"), "previewRequest.steps[0].durationMs", "must be an integer"),
    ("bool-for-int", put(f"{STEP0}.durationMs", True), "previewRequest.steps[0].durationMs", "must be an integer"),
    ("float-for-int", put(f"{STEP0}.durationMs", 3000.0), "previewRequest.steps[0].durationMs", "must be an integer"),
    ("string-for-fade", put(f"{AUDIO}.fadeInMs", "0"), "previewRequest.audio.fadeInMs", "must be an integer"),
    ("nan-volume", put(f"{AUDIO}.volume", float("nan")), "previewRequest.audio.volume", "must be a finite number"),
    ("infinite-volume", put(f"{AUDIO}.volume", float("inf")), "previewRequest.audio.volume", "must be a finite number"),
    ("bool-for-number", put(f"{AUDIO}.volume", True), "previewRequest.audio.volume", "must be a number"),
    ("string-for-number", put(f"{AUDIO}.volume", "1.0"), "previewRequest.audio.volume", "must be a number"),
    ("string-for-bool", put("dryRun", "false"), "dryRun", "must be true or false"),
    ("int-for-bool", put("dryRun", 0), "dryRun", "must be true or false"),
    ("int-for-string", put("projectId", 123), "projectId", "must be a string"),
    ("null-required-int", put(f"{STEP0}.durationMs", None), "previewRequest.steps[0].durationMs", "must not be null"),
    ("null-projectId", put("projectId", None), "projectId", "must not be null"),
    ("null-dryRun", put("dryRun", None), "dryRun", "must not be null"),
    ("null-background", put(f"{STEP0}.background", None), "previewRequest.steps[0].background", "must not be null"),
    ("null-steps", put(f"{PR}.steps", None), "previewRequest.steps", "must not be null"),
    ("steps-not-array", put(f"{PR}.steps", "intro"), "previewRequest.steps", "must be an array"),
    ("step-not-object", put(f"{PR}.steps.1", ["demo"]), "previewRequest.steps[1]", "must be an object"),
    ("preview-not-object", put(PR, "x"), "previewRequest", "must be an object"),
    ("lone-surrogate", put(f"{STEP0}.title", "\ud800"), "previewRequest.steps[0].title", "lone surrogate"),
    ("bad-asset-type", put(f"{ASSET0}.type", "pdf"), "previewRequest.assets[0].type", "must be one of 'image', 'video', 'audio'"),
    # unknown fields, at each level
    ("unknown-top", put("priority", 1), "priority", "unknown field"),
    ("unknown-preview", put(f"{PR}.chapterID", "c"), "previewRequest.chapterID", "unknown field"),
    ("unknown-step", put(f"{STEP0}.durationMS", 3000), "previewRequest.steps[0].durationMS", "unknown field"),
    ("unknown-asset-field", put(f"{ASSET0}.size", 10), "previewRequest.assets[0].size", "unknown field"),
    ("unknown-audio-field", put(f"{AUDIO}.loop", True), "previewRequest.audio.loop", "unknown field"),
    ("unknown-output-field", put(f"{PR}.output.bitrate", 1), "previewRequest.output.bitrate", "unknown field"),
    # missing fields
    ("missing-projectId", drop("projectId"), "projectId", "is required"),
    ("missing-previewRequest", drop(PR), "previewRequest", "is required"),
    ("missing-chapterId", drop(f"{PR}.chapterId"), "previewRequest.chapterId", "is required"),
    ("missing-steps", drop(f"{PR}.steps"), "previewRequest.steps", "is required"),
    ("missing-step-duration", drop(f"{STEP0}.durationMs"), "previewRequest.steps[0].durationMs", "is required"),
    ("missing-asset-uri", drop(f"{ASSET0}.uri"), "previewRequest.assets[0].uri", "is required"),
    ("missing-audio-asset", drop(f"{AUDIO}.asset"), "previewRequest.audio.asset", "is required"),
    ("missing-output-fps", drop(f"{PR}.output.fps"), "previewRequest.output.fps", "is required"),
    # ids
    ("bad-jobId", put("jobId", "not-a-uuid"), "jobId", "must be a UUID"),
    ("jobId-without-dashes", put("jobId", "6f9619ff8b864d01b42d00c04fc964ff"), "jobId", "must be a UUID"),
    ("bad-projectId", put("projectId", "my project"), "projectId", "only letters, digits"),
    ("projectId-leading-dot", put("projectId", ".p"), "projectId", "must start with a letter or digit"),
    ("empty-chapterId", put(f"{PR}.chapterId", ""), "previewRequest.chapterId", "must not be empty"),
    ("long-step-id", put(f"{STEP0}.id", "x" * 129), "previewRequest.steps[0].id", "must be at most 128 characters"),
    ("requestId-space", put("requestId", "req 1"), "requestId", "printable ASCII without spaces"),
    ("requestId-empty", put("requestId", ""), "requestId", "must not be empty"),
    ("requestId-too-long", put("requestId", "r" * 129), "requestId", "must be at most 128 characters"),
    ("duplicate-step-id", put(f"{PR}.steps.1.id", "intro"), "previewRequest.steps[1].id", "duplicate step id 'intro'"),
    (
        "duplicate-asset-id",
        put(f"{PR}.assets.3", {"id": "cover", "type": "image", "uri": "b.png"}),
        "previewRequest.assets[3].id",
        "duplicate asset id 'cover'",
    ),
    # steps and durations
    ("empty-steps", put(f"{PR}.steps", []), "previewRequest.steps", "must have at least one step"),
    ("too-many-steps", put(f"{PR}.steps", _steps(101)), "previewRequest.steps", "must have at most 100 steps"),
    ("duration-too-short", put(f"{STEP0}.durationMs", 99), "previewRequest.steps[0].durationMs", "must be at least 100"),
    ("duration-too-long", put(f"{STEP0}.durationMs", 60_001), "previewRequest.steps[0].durationMs", "must be at most 60000"),
    (
        "total-too-long",
        put(f"{PR}.steps", _steps(11, 60_000)),
        "previewRequest.steps",
        "total duration 660000 ms must be at most 600000 ms",
    ),
    ("title-too-long", put(f"{STEP0}.title", "é" * 201), "previewRequest.steps[0].title", "must be at most 200 characters"),
    ("text-too-long", put(f"{STEP0}.text", "x" * 2001), "previewRequest.steps[0].text", "must be at most 2000 characters"),
    ("title-newline", put(f"{STEP0}.title", "two\nlines"), "previewRequest.steps[0].title", "control characters (found U+000A)"),
    ("text-bell", put(f"{STEP0}.text", "ding\x07"), "previewRequest.steps[0].text", "control characters (found U+0007)"),
    ("text-c1-control", put(f"{STEP0}.text", "a\x85b"), "previewRequest.steps[0].text", "control characters (found U+0085)"),
    ("bad-background-name", put(f"{STEP0}.background", "red"), "previewRequest.steps[0].background", "must be a colour"),
    ("bad-background-length", put(f"{STEP0}.background", "#12345"), "previewRequest.steps[0].background", "must be a colour"),
    # cross references
    ("unknown-step-asset", put(f"{STEP0}.asset", "nope"), "previewRequest.steps[0].asset", "unknown asset 'nope'"),
    ("step-asset-is-audio", put(f"{STEP0}.asset", "narration"), "previewRequest.steps[0].asset", "asset 'narration' is audio"),
    ("audio-asset-not-audio", put(f"{AUDIO}.asset", "cover"), "previewRequest.audio.asset", "audio needs an audio asset"),
    ("unknown-audio-asset", put(f"{AUDIO}.asset", "voice"), "previewRequest.audio.asset", "unknown asset 'voice'"),
    (
        "too-many-assets",
        lambda body: body[PR]["assets"].extend(_assets(48)),
        "previewRequest.assets",
        "must have at most 50 assets",
    ),
    # audio
    ("volume-too-high", put(f"{AUDIO}.volume", 2.01), "previewRequest.audio.volume", "must be between 0.0 and 2.0"),
    ("volume-negative", put(f"{AUDIO}.volume", -1), "previewRequest.audio.volume", "must be between 0.0 and 2.0"),
    ("negative-fade", put(f"{AUDIO}.fadeOutMs", -1), "previewRequest.audio.fadeOutMs", "must be at least 0"),
    (
        "fades-longer-than-chapter",
        put(f"{AUDIO}.fadeInMs", 4501),
        "previewRequest.audio",
        "(5001 ms) must be at most the total duration (5000 ms)",
    ),
    ("uppercase-sha256", put(f"{ASSET0}.sha256", "AB" * 32), "previewRequest.assets[0].sha256", "64 lowercase hex"),
    ("short-sha256", put(f"{ASSET0}.sha256", "ab"), "previewRequest.assets[0].sha256", "64 lowercase hex"),
    # asset uris
    (
        "dotdot-path",
        put(f"{ASSET0}.uri", "images/../../etc/passwd"),
        "previewRequest.assets[0].uri",
        "'..' is not allowed in an asset path",
    ),
    ("absolute-path", put(f"{ASSET0}.uri", "/etc/passwd"), "previewRequest.assets[0].uri", "absolute paths are not allowed"),
    ("backslash-path", put(f"{ASSET0}.uri", "images\\cover.png"), "previewRequest.assets[0].uri", "backslashes are not allowed"),
    ("home-path", put(f"{ASSET0}.uri", "~/cover.png"), "previewRequest.assets[0].uri", "'~' is not allowed"),
    ("empty-uri", put(f"{ASSET0}.uri", ""), "previewRequest.assets[0].uri", "must not be empty"),
    ("nul-in-path", put(f"{ASSET0}.uri", "images/a\0.png"), "previewRequest.assets[0].uri", "control characters (found U+0000)"),
    ("file-uri", put(f"{ASSET0}.uri", "file:///etc/passwd"), "previewRequest.assets[0].uri", "file: URIs are not allowed"),
    ("ftp-uri", put(f"{ASSET0}.uri", "ftp://cdn.example/a.png"), "previewRequest.assets[0].uri", "scheme 'ftp:' is not allowed"),
    (
        "javascript-uri",
        put(f"{ASSET0}.uri", "javascript:alert(1)"),
        "previewRequest.assets[0].uri",
        "scheme 'javascript:' is not allowed",
    ),
    (
        "windows-drive",
        put(f"{ASSET0}.uri", "C:\\images\\a.png"),
        "previewRequest.assets[0].uri",
        "Windows drive paths are not allowed",
    ),
    (
        "disallowed-host",
        put(f"{ASSET0}.uri", "https://evil.example/a.png"),
        "previewRequest.assets[0].uri",
        "host 'evil.example' is not in PREVIEW_ASSET_ALLOWED_HOSTS",
    ),
    (
        "userinfo-in-url",
        put(f"{ASSET0}.uri", "https://user:pw@cdn.example/a.png"),
        "previewRequest.assets[0].uri",
        "credentials (user:password@) are not allowed",
    ),
    ("url-without-host", put(f"{ASSET0}.uri", "https:///a.png"), "previewRequest.assets[0].uri", "with a host"),
    ("bad-base64", put(f"{ASSET0}.uri", "data:image/png;base64,@@@@"), "previewRequest.assets[0].uri", "invalid base64"),
    ("data-without-comma", put(f"{ASSET0}.uri", "data:image/png;base64"), "previewRequest.assets[0].uri", "no ','"),
    ("data-bad-media-type", put(f"{ASSET0}.uri", "data:image png,xx"), "previewRequest.assets[0].uri", "bad media type"),
    (
        "data-too-large",
        put(f"{ASSET0}.uri", _data_uri(262_145)),
        "previewRequest.assets[0].uri",
        "decodes to 262145 bytes, more than 262144",
    ),
    # output
    ("bad-preset", put(f"{PR}.output", "4k"), "previewRequest.output", "unknown preset '4k'"),
    ("output-number", put(f"{PR}.output", 720), "previewRequest.output", "must be a preset name or an object"),
    ("odd-width", put(f"{PR}.output.width", 1279), "previewRequest.output.width", "must be an even number"),
    ("odd-height", put(f"{PR}.output.height", 719), "previewRequest.output.height", "must be an even number"),
    ("width-too-large", put(f"{PR}.output.width", 3840), "previewRequest.output.width", "must be at most 1920"),
    ("height-too-small", put(f"{PR}.output.height", 8), "previewRequest.output.height", "must be at least 16"),
    ("fps-too-high", put(f"{PR}.output.fps", 61), "previewRequest.output.fps", "must be at most 60"),
    ("fps-zero", put(f"{PR}.output.fps", 0), "previewRequest.output.fps", "must be at least 1"),
    ("float-width", put(f"{PR}.output.width", 1280.0), "previewRequest.output.width", "must be an integer"),
]


@pytest.mark.parametrize(
    ("mutate", "field", "fragment"),
    [pytest.param(mutate, field, fragment, id=case_id) for case_id, mutate, field, fragment in INVALID],
)
def test_invalid_request_names_the_field(mutate: Mutation, field: str, fragment: str) -> None:
    # Given a valid request with exactly one thing wrong
    body = full_body()
    mutate(body)

    # When it is parsed
    with pytest.raises(ValidationError) as caught:
        parse(body)

    # Then exactly that field is reported, with a specific message
    errors = caught.value.errors
    assert [error.field for error in errors] == [field], errors
    assert fragment in errors[0].message
    assert str(caught.value) == f"{field}: {errors[0].message}"


def test_invalid_table_is_large_enough() -> None:
    assert len(INVALID) >= 30
    assert len({case_id for case_id, *_ in INVALID}) == len(INVALID)


@pytest.mark.parametrize("body", [None, [], "request", 3, True])
def test_a_body_that_is_not_an_object(body: object) -> None:
    with pytest.raises(ValidationError) as caught:
        parse(body)
    assert caught.value.errors == (FieldError("", "must be an object" if body is not None else "must not be null"),)


def test_from_json_checks_types_but_not_limits() -> None:
    data = parse(full_body()).to_json()
    data["previewRequest"]["steps"][0]["durationMs"] = 999_999  # above today's limit

    assert JobRequest.from_json(data).preview_request.steps[0].duration_ms == 999_999

    data["previewRequest"]["steps"][0]["durationMs"] = "1"
    with pytest.raises(ValidationError, match=r"previewRequest\.steps\[0\]\.durationMs"):
        JobRequest.from_json(data)


# --- asset uris ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "kind"),
    [
        ("images/cover.png", UriKind.PATH),
        ("./a/./b.png", UriKind.PATH),
        ("a..b/c..png", UriKind.PATH),
        ("data:,hello", UriKind.DATA),
        ("data:text/plain;charset=utf-8,h%C3%A9", UriKind.DATA),
        ("data:image/png;base64,iVBORw0KGgo=", UriKind.DATA),
        ("http://cdn.example/a.png", UriKind.HTTP),
        ("HTTPS://CDN.EXAMPLE:8443/a.png?x=1", UriKind.HTTP),
    ],
)
def test_classify_uri_accepts(uri: str, kind: UriKind) -> None:
    assert classify_uri(uri, ALLOWED_HOSTS, Limits()) is kind


@pytest.mark.parametrize(
    ("uri", "fragment"),
    [
        ("https://cdn.example.evil.example/a.png", "host 'cdn.example.evil.example'"),
        ("https://cdn.example:notaport/a.png", "invalid port"),
        ("http://cdn.example\\@evil.example/", "backslashes"),
        ("https://@cdn.example/a.png", "credentials"),
        ("data:,", "has no data"),
        ("data:,%zz", "bad %-escape"),
        ("cover:v2.png", "scheme 'cover:' is not allowed"),
        ("D:", "Windows drive"),
        ("http://[cdn.example/a.png", "malformed URL"),
        ("data:;a=" + "a" * 60 + '",x', "bad media type"),
    ],
)
def test_classify_uri_refuses(uri: str, fragment: str) -> None:
    with pytest.raises(UriError) as caught:
        classify_uri(uri, ALLOWED_HOSTS, Limits())
    assert fragment in caught.value.reason
    assert caught.value.uri == uri


def test_data_uri_limit_is_configurable() -> None:
    uri = _data_uri(11)
    assert classify_uri(uri, limits=Limits(max_data_uri_bytes=11)) is UriKind.DATA
    with pytest.raises(UriError, match="decodes to 11 bytes, more than 10"):
        classify_uri(uri, limits=Limits(max_data_uri_bytes=10))


def test_no_host_is_allowed_by_default() -> None:
    with pytest.raises(UriError, match="not in PREVIEW_ASSET_ALLOWED_HOSTS"):
        classify_uri("https://cdn.example/a.png")


def test_decode_data_uri() -> None:
    assert decode_data_uri("data:image/png;base64,iVBORw0KGgo=") == b"\x89PNG\r\n\x1a\n"
    assert decode_data_uri("data:text/plain;charset=utf-8,h%C3%A9") == "hé".encode()
    assert decode_data_uri("DATA:;BASE64,aGk%3D") == b"hi"
    with pytest.raises(UriError, match="not a data: URI"):
        decode_data_uri("images/a.png")


# --- content hash --------------------------------------------------------------


def _reverse_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _reverse_keys(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [_reverse_keys(item) for item in value]
    return value


def test_content_sha256_is_the_hash_of_the_canonical_normalized_json() -> None:
    request = parse(full_body())
    content = request.to_json()
    del content["jobId"], content["requestId"]
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    assert content_sha256(request) == hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    assert canonical_json(content) == canonical.encode("utf-8")


def test_canonical_json_keeps_non_ascii_as_utf8() -> None:
    assert canonical_json({"b": "é", "a": [1, 2]}) == '{"a":[1,2],"b":"é"}'.encode()


def test_content_sha256_ignores_key_order() -> None:
    body = full_body()
    reordered = _reverse_keys(body)
    assert list(reordered) != list(body)

    assert content_sha256(parse(reordered)) == content_sha256(parse(body))


def test_content_sha256_equal_for_absent_and_explicit_defaults() -> None:
    explicit = minimal_body()
    explicit.update(dryRun=False, requestId=None)
    explicit["previewRequest"].update(output="preview", assets=[], audio=None)
    explicit["previewRequest"]["steps"][0].update(
        title=None, text=None, asset=None, background="#000"
    )

    assert content_sha256(parse(explicit)) == content_sha256(parse(minimal_body()))


def test_content_sha256_ignores_job_and_request_ids() -> None:
    other = full_body()
    other.update(jobId="00000000-0000-4000-8000-000000000000", requestId="retry-2")

    assert content_sha256(parse(other)) == content_sha256(parse(full_body()))


@pytest.mark.parametrize(
    "mutate",
    [
        put(f"{STEP0}.durationMs", 3001),
        put("dryRun", False),
        put("projectId", "project-124"),
        put(f"{PR}.output", "hd"),  # a preset name is not its explicit size
        put(f"{AUDIO}.volume", 0.5),
    ],
)
def test_content_sha256_changes_with_content(mutate: Mutation) -> None:
    changed = full_body()
    mutate(changed)

    assert content_sha256(parse(changed)) != content_sha256(parse(full_body()))


# --- properties ----------------------------------------------------------------

_KNOWN_KEYS = sorted(
    {
        "jobId", "projectId", "requestId", "dryRun", "previewRequest", "chapterId",
        "output", "steps", "assets", "audio", "id", "durationMs", "title", "text",
        "asset", "background", "type", "uri", "sha256", "volume", "fadeInMs",
        "fadeOutMs", "width", "height", "fps",
    }
)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["preview", "hd", "image", "audio", "#fff", "data:,x", "a/b.png", JOB_ID])
)
_keys = st.sampled_from(_KNOWN_KEYS) | st.text(max_size=8)
json_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=6),
    max_leaves=40,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


_FULL_PATHS = _paths(full_body())


def _check_outcome(body: object) -> None:
    """Parsing either succeeds with a self-consistent request or raises ValidationError."""
    try:
        request = parse(body)
    except ValidationError as exc:
        assert exc.errors
        assert all(isinstance(error, FieldError) and error.message for error in exc.errors)
        return
    data = request.to_json()
    assert JobRequest.from_json(data) == request
    assert parse(data) == request
    assert len(content_sha256(request)) == 64


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_random_json_only_raises_validation_error(body: object) -> None:
    _check_outcome(body)
    try:
        parse_preview_request(body)
    except ValidationError:
        pass


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_FULL_PATHS), json_values | st.just(_DELETE))
def test_a_valid_request_with_one_part_replaced(path: tuple[Any, ...], value: object) -> None:
    body = full_body()
    node: Any = body
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = copy.deepcopy(value)
    _check_outcome(body)


_uri_prefixes = st.sampled_from(["http://", "https://cdn.example", "data:", "data:;base64,", "file:", "a/"])


@settings(deadline=None)
@given(st.text(max_size=40) | st.builds(str.__add__, _uri_prefixes, st.text(max_size=30)))
def test_classify_uri_only_raises_uri_error(uri: str) -> None:
    try:
        kind = classify_uri(uri, ALLOWED_HOSTS, Limits())
    except UriError as exc:
        assert exc.reason
    else:
        assert isinstance(kind, UriKind)


_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,20}", fullmatch=True)


@st.composite
def valid_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """Requests within the default limits, with optional fields present or not."""
    asset_ids = draw(st.lists(_ids, max_size=4, unique=True))
    assets = [
        {"id": asset_id, "type": draw(st.sampled_from(["image", "video", "audio"])), "uri": f"a/{index}.bin"}
        for index, asset_id in enumerate(asset_ids)
    ]
    visual = [asset["id"] for asset in assets if asset["type"] != "audio"]
    audible = [asset["id"] for asset in assets if asset["type"] == "audio"]
    steps = []
    for step_id in draw(st.lists(_ids, min_size=1, max_size=4, unique=True)):
        step: dict[str, Any] = {"id": step_id, "durationMs": draw(st.integers(100, 60_000))}
        if draw(st.booleans()):
            step["title"] = draw(st.text(st.characters(codec="utf-8", categories=["L", "N", "P", "Zs"]), max_size=20))
        if draw(st.booleans()):
            step["background"] = draw(st.from_regex(r"#([0-9a-fA-F]{3}){1,2}", fullmatch=True))
        if visual and draw(st.booleans()):
            step["asset"] = draw(st.sampled_from(visual))
        steps.append(step)
    preview: dict[str, Any] = {"chapterId": draw(_ids), "steps": steps}
    if assets or draw(st.booleans()):
        preview["assets"] = assets
    if draw(st.booleans()):
        preview["output"] = draw(
            st.sampled_from(sorted(OUTPUT_PRESETS))
            | st.fixed_dictionaries(
                {
                    "width": st.integers(8, 960).map(lambda n: 2 * n),
                    "height": st.integers(8, 540).map(lambda n: 2 * n),
                    "fps": st.integers(1, 60),
                }
            )
        )
    if audible and draw(st.booleans()):
        preview["audio"] = {"asset": draw(st.sampled_from(audible)), "volume": draw(st.floats(0, 2))}
    body: dict[str, Any] = {"projectId": draw(_ids), "previewRequest": preview}
    if draw(st.booleans()):
        body["dryRun"] = draw(st.booleans())
    if draw(st.booleans()):
        body["jobId"] = str(draw(st.uuids())).upper()
    return body


@settings(deadline=None)
@given(valid_bodies())
def test_valid_requests_round_trip_and_hash_stably(body: dict[str, Any]) -> None:
    request = parse(body)

    data = request.to_json()
    assert JobRequest.from_json(data) == request
    assert parse(data) == request
    assert parse(json.loads(json.dumps(data))) == request
    assert content_sha256(parse(_reverse_keys(body))) == content_sha256(request)
    assert content_sha256(parse(data)) == content_sha256(request)


def test_requests_are_frozen() -> None:
    request = parse(minimal_body())
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        request.project_id = "other"  # type: ignore[misc]
