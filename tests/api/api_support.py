"""Helpers of the API tests: clients that check every answer against the OpenAPI document,
a uvicorn server in a thread, and jobs with real artifact files.

Not a conftest.py: a second module named ``conftest`` would replace the root
one in ``sys.modules`` and break the ``from conftest import …`` of the test
modules collected after it.
"""

from __future__ import annotations

import re
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import referencing
import uvicorn
from referencing.jsonschema import DRAFT202012
from starlette.types import ASGIApp

with warnings.catch_warnings():
    # Starlette 1.10 prefers httpx2 for its test client; httpx works the same for these tests.
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

from conftest import wait_until

from preview_actors.runtime import Runtime
from preview_actors.store import JobRecord, JobState
from preview_api.openapi import load_document

#: Where the tests mount the sub-app, as the standalone server does.
MOUNT = "/api/preview"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


class OpenApiChecker:
    """Validates answers of the sub-app against ``openapi.json``: status documented, headers, JSON body.

    An answer to a path or method the document does not have must be a
    documented-shape error (404/405 with the Error schema).
    """

    def __init__(self, mount: str = MOUNT) -> None:
        self.mount = mount
        self.document = load_document()
        resource = referencing.Resource.from_contents(self.document, default_specification=DRAFT202012)
        self.registry: referencing.Registry[Any] = referencing.Registry().with_resource("urn:openapi", resource)
        self._templates = [
            (re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", path) + "$"), path) for path in self.document["paths"]
        ]
        self.checked = 0

    def __call__(self, response: httpx.Response) -> None:
        path = response.request.url.path
        if not path.startswith(self.mount + "/"):
            return  # the host's own routes
        self.check(response.request.method, path[len(self.mount):], response)

    def check(self, method: str, relative_path: str, response: httpx.Response) -> None:
        status = response.status_code
        where = f"{method} {relative_path} -> {status}"
        operation = self._operation(method, relative_path)
        if operation is None:
            assert status in (404, 405), f"{where}: undocumented path or method answered"
            spec: dict[str, Any] = {"content": {"application/json": {}}}
            body_pointer = "/components/schemas/Error"
        else:
            pointer, operation_spec = operation
            assert str(status) in operation_spec["responses"], f"{where}: status not documented"
            spec = operation_spec["responses"][str(status)]
            spec_pointer = spec["$ref"][1:] if "$ref" in spec else f"{pointer}/responses/{status}"
            spec = self._resolve(spec)
            body_pointer = f"{spec_pointer}/content/application~1json/schema"
        request_id = response.headers.get("x-request-id")
        assert request_id and re.fullmatch(r"[\x21-\x7e]{1,128}", request_id), f"{where}: X-Request-ID {request_id!r}"
        for name, header in spec.get("headers", {}).items():
            header = self._resolve(header)
            value = response.headers.get(name)
            if value is None:
                assert not header.get("required"), f"{where}: header {name} missing"
                continue
            self._validate(value, header["schema"], f"{where}: header {name}")
        content = spec.get("content")
        if not content:
            response.read()
            assert response.content == b"", f"{where}: a body where none is documented"
            return
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        assert media_type in content, f"{where}: content type {media_type!r} not in {sorted(content)}"
        if method == "HEAD" or media_type != "application/json":
            return
        response.read()
        self._validate(response.json(), {"$ref": f"urn:openapi#{body_pointer}"}, f"{where}: body")
        self.checked += 1

    def validate_schema(self, instance: Any, component: str) -> None:
        """Validate ``instance`` against ``#/components/schemas/<component>``."""
        self._validate(instance, {"$ref": f"urn:openapi#/components/schemas/{component}"}, component)

    def _operation(self, method: str, relative_path: str) -> tuple[str, dict[str, Any]] | None:
        method = "get" if method.upper() == "HEAD" else method.lower()
        for pattern, template in self._templates:
            if pattern.match(relative_path):
                item = self.document["paths"][template]
                if method in item:
                    escaped = template.replace("~", "~0").replace("/", "~1")
                    return f"/paths/{escaped}/{method}", item[method]
                return None
        return None

    def _resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            target: Any = self.document
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
        return node

    def _validate(self, instance: Any, schema: dict[str, Any], where: str) -> None:
        validator = jsonschema.Draft202012Validator(schema, registry=self.registry)
        errors = sorted(validator.iter_errors(instance), key=lambda error: list(error.path))
        assert not errors, f"{where}: {errors[0].message} at {list(errors[0].path)} in {str(instance)[:500]}"


def checked_client(app: ASGIApp, checker: OpenApiChecker, **kwargs: Any) -> TestClient:
    """A TestClient whose every answer is checked against the document."""
    client = TestClient(app, **kwargs)
    client.event_hooks["response"] = [checker]
    return client


class LiveServer:
    """uvicorn serving ``app`` in a thread on a free loopback port."""

    def __init__(self, app: ASGIApp) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off", ws="none", access_log=False)
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._socket]}, name="uvicorn", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self._thread.start()
        wait_until(lambda: self.server.started or not self._thread.is_alive(), timeout_s=15, what="uvicorn to start")
        if not self.server.started:
            raise AssertionError("uvicorn did not start")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=15)
        self._socket.close()


def store_succeeded_job(
    runtime: Runtime,
    tmp_path: Path,
    video: bytes | None,
    *,
    project_id: str = "project-1",
    state: JobState = JobState.SUCCEEDED,
    poster: bytes = b"\xff\xd8\xff\xe0 poster",
) -> str:
    """Record a job in ``state`` whose artifacts (stored for real, by content hash) are ``video`` and ``poster``.

    ``video=None`` is a dry run. For the artifact endpoint, without running a worker.
    """
    job_id = str(uuid.uuid4())
    artifact: dict[str, Any] = {}
    for role, data, name in (("video", video, "video.mp4"), ("poster", poster, "poster.jpg")):
        if data is None:
            continue
        source = tmp_path / f"{job_id}-{name}"
        source.write_bytes(data)
        artifact[role] = runtime.artifacts.add_file(source).to_json()
    record = JobRecord(
        job_id=job_id,
        project_id=project_id,
        request_id=uuid.uuid4().hex,
        content_sha256="0" * 64,
        request={"dryRun": video is None},
        state=state,
        progress=1.0 if state is JobState.SUCCEEDED else 0.5,
        artifact=artifact if state is JobState.SUCCEEDED else None,
        enqueued=True,
    )
    runtime.store.create(record)
    return job_id


@pytest.fixture
def checker() -> OpenApiChecker:
    return OpenApiChecker()


def poll(read: Callable[[], Any], until: Callable[[Any], bool], *, timeout_s: float, interval_s: float = 0.05) -> Iterator[Any]:
    """Yield each value read until one satisfies ``until`` (yielded too); fail at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = read()
        yield value
        if until(value):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s; last value {value!r}")
        time.sleep(interval_s)


class Api:
    """A sub-app mounted at :data:`MOUNT` in a bare host, its runtime and a checked TestClient."""

    def __init__(self, runtime: Runtime, app: ASGIApp, client: TestClient) -> None:
        self.runtime = runtime
        self.app = app
        self.client = client

    def url(self, path: str) -> str:
        return MOUNT + path


@pytest.fixture
def make_api(runtime_factory: Callable[..., Runtime], checker: OpenApiChecker) -> Iterator[Callable[..., Api]]:
    """``make_api(kind="stub", *, authorize=None, raise_server_exceptions=True, **settings)``."""
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from preview_api import create_app

    clients: list[TestClient] = []

    def make(
        kind: str = "stub",
        *,
        authorize: Any = None,
        raise_server_exceptions: bool = True,
        **overrides: Any,
    ) -> Api:
        runtime = runtime_factory(kind, **overrides)
        app = create_app(authorize=authorize)
        host = Starlette(routes=[Mount(MOUNT, app=app)])
        client = checked_client(host, checker, raise_server_exceptions=raise_server_exceptions)
        clients.append(client)
        return Api(runtime, app, client)

    yield make
    for client in clients:
        client.close()
