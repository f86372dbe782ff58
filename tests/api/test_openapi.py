"""The OpenAPI document: the same routes as the app, valid schemas, in step with the model and the settings."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import jsonschema
import pytest
from api_support import Api, OpenApiChecker, checker, make_api  # noqa: F401 - fixtures
from conftest import REPO, chapter_request

from preview_actors.limits import Limits
from preview_actors.request import parse_job_request
from preview_api.openapi import load_document

MakeApi = Callable[..., Api]
OPERATIONS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def test_every_route_is_documented_and_every_operation_routed(make_api: MakeApi) -> None:
    app = make_api().app
    routed = {(route.path, method) for route in app.routes for method in route.methods if method != "HEAD"}  # type: ignore[attr-defined]
    documented = {
        (path, method.upper()) for path, item in load_document()["paths"].items() for method in item if method in OPERATIONS
    }
    assert routed == documented


def test_every_schema_is_valid_json_schema() -> None:
    document = load_document()
    assert document["openapi"].startswith("3.1.")
    for schema in document["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert operation["responses"], (path, method)


def test_every_error_code_raised_is_documented() -> None:
    import re

    documented = set(load_document()["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["enum"])
    raised = set()
    for source in (REPO / "preview_api").glob("*.py"):
        raised |= set(re.findall(r"ApiError\(\s*\d{3},\s*\"([a-z_]+)\"", source.read_text()))
        raised |= set(re.findall(r"\"code\": \"([a-z_]+)\"", source.read_text()))
    assert raised, "the pattern found no error codes"
    assert raised <= documented, raised - documented


@pytest.mark.parametrize(
    "body",
    [
        chapter_request(),
        chapter_request(jobId=str(uuid.uuid4()), requestId="r-1", dryRun=True),
        json.loads((REPO / "examples" / "chapter.json").read_text()),
    ],
    ids=["small", "all-fields", "examples/chapter.json"],
)
def test_requests_the_model_accepts_match_the_request_schema(checker: OpenApiChecker, body: dict[str, Any]) -> None:
    parse_job_request(body)  # accepted by the model
    checker.validate_schema(body, "JobRequest")
    # and the normalized form, every default filled in, too
    checker.validate_schema(parse_job_request(body).to_json(), "JobRequest")


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda body: body.update(extra=True), "additionalProperties"),
        (lambda body: body["previewRequest"]["steps"][0].update(durationMs="500"), "type"),
        (lambda body: body["previewRequest"]["steps"][0].update(durationMs=60_001), "maximum"),
        (lambda body: body["previewRequest"].update(steps=[]), "minItems"),
        (lambda body: body["previewRequest"].update(output={"width": 321, "height": 180, "fps": 10}), "multipleOf"),
        (lambda body: body.update(projectId="has space"), "pattern"),
    ],
)
def test_requests_the_model_refuses_for_their_form_are_refused_by_the_schema(
    checker: OpenApiChecker, mutate: Callable[[dict[str, Any]], Any], where: str
) -> None:
    body = chapter_request()
    mutate(body)
    with pytest.raises(AssertionError, match="JobRequest"):
        checker.validate_schema(body, "JobRequest")


def test_served_document_has_the_mount_and_the_configured_limits(make_api: MakeApi) -> None:
    api = make_api(limits=Limits(max_steps=7, max_step_duration_ms=5000, max_width=640), max_body_bytes=4096)

    document = api.client.get(api.url("/openapi.json")).json()

    assert document["servers"] == [{"url": "http://testserver/api/preview"}]
    schemas = document["components"]["schemas"]
    assert schemas["PreviewRequest"]["properties"]["steps"]["maxItems"] == 7
    assert schemas["Step"]["properties"]["durationMs"]["maximum"] == 5000
    assert schemas["OutputSize"]["properties"]["width"]["maximum"] == 640
    assert "4096 bytes" in document["paths"]["/"]["post"]["requestBody"]["description"]
    # The shipped file is left as it is.
    assert load_document()["components"]["schemas"]["PreviewRequest"]["properties"]["steps"]["maxItems"] == 100


def test_the_checker_catches_answers_that_break_the_document(checker: OpenApiChecker) -> None:
    request = httpx.Request("GET", "http://testserver/api/preview/healthz")
    good = httpx.Response(200, json={"status": "ok"}, headers={"X-Request-ID": "r"}, request=request)
    wrong_body = httpx.Response(200, json={"status": "fine"}, headers={"X-Request-ID": "r"}, request=request)
    no_request_id = httpx.Response(200, json={"status": "ok"}, request=request)
    undocumented_status = httpx.Response(418, json={"status": "ok"}, headers={"X-Request-ID": "r"}, request=request)

    checker(good)
    for bad in (wrong_body, no_request_id, undocumented_status):
        with pytest.raises(AssertionError):
            checker(bad)



def test_asset_references_are_documented_as_references(checker: OpenApiChecker) -> None:
    schemas = load_document()["components"]["schemas"]
    asset_id = schemas["AssetId"]
    assert "assets" in asset_id["description"]  # it says what it must name
    # steps[].asset and audio.asset point at the shared schema, not at a free string
    assert {"$ref": "#/components/schemas/AssetId"} in schemas["Step"]["properties"]["asset"]["anyOf"]
    assert schemas["AudioTrack"]["properties"]["asset"] == {"$ref": "#/components/schemas/AssetId"}
    # and the schema refuses what can never be an asset id
    for bad in ("has space", "", "../cover"):
        body = chapter_request()
        body["previewRequest"]["steps"][0]["asset"] = bad  # type: ignore[index]
        with pytest.raises(AssertionError, match="JobRequest"):
            checker.validate_schema(body, "JobRequest")


def test_the_served_limits_reach_asset_references(make_api: MakeApi, checker: OpenApiChecker) -> None:
    api = make_api(limits=Limits(max_id_chars=8))
    document = api.client.get(api.url("/openapi.json")).json()
    # AssetId is an Identifier: the configured length applies to it too
    schemas = document["components"]["schemas"]
    assert schemas["Identifier"]["maxLength"] == 8
    assert schemas["AssetId"]["allOf"] == [{"$ref": "#/components/schemas/Identifier"}]


def test_job_routes_document_the_bearer_token_they_may_need() -> None:
    paths = load_document()["paths"]
    for path, method in (("/", "post"), ("/{jobId}/status", "get"), ("/{jobId}", "delete")):
        operation = paths[path][method]
        # optional in the shipped document: a host's mount decides; the standalone server requires it
        assert operation["security"] == [{"bearerToken": []}, {}], (path, method)
        assert "401" in operation["responses"], (path, method)
