"""The HTTP edges of the sub-app: 405 with the path's own ``Allow``, JSON 404s under the mount,
and ``POST /api/preview`` without the trailing slash, in the standalone server and in hosts."""

from __future__ import annotations

import importlib
import importlib.util
import uuid
from collections.abc import Callable
from types import ModuleType
from typing import Any

import httpx
import pytest
from api_support import MOUNT, Api, LiveServer, OpenApiChecker, checked_client, checker, make_api  # noqa: F401 - fixtures
from conftest import REPO, chapter_request

from preview_actors.runtime import Runtime
from preview_api import PreviewMount, create_app
from preview_api.openapi import load_document

MakeApi = Callable[..., Api]
#: Methods probed on every path; HEAD is left out (it goes wherever GET goes).
PROBED_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")


def documented_methods() -> dict[str, set[str]]:
    """Each documented path, its ``{jobId}`` filled in, mapped to the methods it documents (GET brings HEAD)."""
    job_id = str(uuid.uuid4())
    paths: dict[str, set[str]] = {}
    for template, item in load_document()["paths"].items():
        methods = {method.upper() for method in item if method in ("get", "post", "put", "delete", "patch", "options")}
        if "GET" in methods:
            methods.add("HEAD")
        paths[template.replace("{jobId}", job_id)] = methods
    return paths


def allowed(answer: httpx.Response) -> set[str]:
    return {method.strip() for method in answer.headers["allow"].split(",")}


def test_405_allow_lists_the_methods_of_the_path_asked_for(make_api: MakeApi) -> None:
    api = make_api()
    wrong = []
    for path, methods in documented_methods().items():
        for method in PROBED_METHODS:
            if method in methods:
                continue
            answer = api.client.request(method, api.url(path))  # the checker validates body and X-Request-ID
            if answer.status_code != 405 or allowed(answer) != methods:
                wrong.append(f"{method} {path}: {answer.status_code} Allow: {answer.headers.get('allow')}")
            elif method not in answer.json()["error"]["message"]:
                wrong.append(f"{method} {path}: the message does not say which method: {answer.json()}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    ("method", "path", "code"),
    [
        ("GET", "/nope", "not_found"),  # was a 405 "Allow: DELETE": the cancel route took any segment
        ("POST", "/nope", "not_found"),
        ("DELETE", "/nope", "job_not_found"),  # a job route's path and method, an id that is not a UUID
        ("GET", "/nope/status", "job_not_found"),
        ("POST", "/nope/status", "not_found"),  # was a 405 "Allow: GET, HEAD"
        ("GET", "/nope/artifact", "job_not_found"),
        ("GET", "/healthz/", "not_found"),
        ("GET", "/a/b/c/d", "not_found"),
        ("POST", f"/{uuid.uuid4()}/nope", "not_found"),
        ("GET", "//", "not_found"),
    ],
)
def test_unknown_paths_under_the_mount_are_json_404s(make_api: MakeApi, method: str, path: str, code: str) -> None:
    api = make_api()

    answer = api.client.request(method, api.url(path))  # the checker validates body and X-Request-ID

    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == code
    assert answer.headers["content-type"] == "application/json"


def load_example_host(name: str) -> ModuleType:
    path = REPO / "examples" / "hosts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"example_host_{name}_edges", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def starlette_host() -> Any:
    from starlette.applications import Starlette

    return Starlette(routes=[PreviewMount(MOUNT, app=create_app())])


def fastapi_host() -> Any:
    from fastapi import FastAPI

    host = FastAPI()
    host.routes.append(PreviewMount(MOUNT, app=create_app()))
    return host


def standalone_server() -> Any:
    import preview_api.asgi

    return importlib.reload(preview_api.asgi).app  # built at import, on the runtime current then


HOSTS: dict[str, Callable[[], Any]] = {
    "standalone server": standalone_server,
    "Starlette host": starlette_host,
    "FastAPI host": fastapi_host,
    "examples/hosts/starlette_host.py": lambda: load_example_host("starlette_host").app,
    "examples/hosts/fastapi_host.py": lambda: load_example_host("fastapi_host").app,
}


@pytest.mark.parametrize("host", list(HOSTS))
def test_post_without_the_trailing_slash_submits(
    host: str, runtime_factory: Callable[..., Runtime], checker: OpenApiChecker
) -> None:
    runtime = runtime_factory("stub")
    app = HOSTS[host]()

    with checked_client(app, checker) as client:
        bare = client.post(MOUNT, json=chapter_request(), follow_redirects=False)
        slashed = client.post(MOUNT + "/", json=chapter_request(), follow_redirects=False)
        bare_get = client.get(MOUNT, follow_redirects=False)

    assert bare.status_code == 202, bare.text
    job_id = bare.json()["jobId"]
    assert bare.json()["statusUrl"] == f"http://testserver{MOUNT}/{job_id}/status"
    assert runtime.store.get(job_id) is not None
    assert slashed.status_code == 202
    # Other methods on the bare path are the sub-app's answers too: JSON, with the request id.
    assert bare_get.status_code == 405 and allowed(bare_get) == {"POST"}
    assert bare_get.json()["error"]["code"] == "method_not_allowed"
    assert bare_get.headers["x-request-id"]


def test_post_without_the_trailing_slash_over_http(runtime_factory: Callable[..., Runtime]) -> None:
    # uvicorn fills raw_path too: the bare path must reach the sub-app as "/" there as well.
    runtime = runtime_factory("stub")
    from preview_api.asgi import create_server_app

    with LiveServer(create_server_app()) as server:
        answer = httpx.post(server.url + MOUNT, json=chapter_request(), timeout=10, follow_redirects=False)
        status = httpx.get(answer.json()["statusUrl"], timeout=10)

    assert answer.status_code == 202, answer.text
    assert answer.headers["location"].startswith(f"{server.url}{MOUNT}/")
    assert status.status_code == 200 and status.json()["jobId"] == answer.json()["jobId"]
    assert runtime.store.get(answer.json()["jobId"]) is not None


@pytest.mark.parametrize("path", ["/", "/nowhere", "/api/previewx"])
def test_the_standalone_server_answers_unknown_paths_in_json(path: str, runtime_factory: Callable[..., Runtime]) -> None:
    runtime_factory("stub")
    from preview_api.asgi import create_server_app

    with checked_client(create_server_app(), OpenApiChecker()) as client:
        answer = client.get(path, headers={"X-Request-ID": "edge-1"})

    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"
    assert answer.headers["x-request-id"] == "edge-1"


def test_a_mount_at_another_path_serves_its_bare_path(runtime_factory: Callable[..., Runtime]) -> None:
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    runtime_factory("stub")
    host = Starlette(routes=[PreviewMount("/v2/previews/", app=create_app())])  # a trailing slash given too

    with TestClient(host) as client:
        answer = client.post("/v2/previews", json=chapter_request(), follow_redirects=False)
        other = client.post("/v2/previewsx", json=chapter_request(), follow_redirects=False)

    assert answer.status_code == 202
    assert answer.json()["statusUrl"].startswith("http://testserver/v2/previews/")
    assert other.status_code == 404
