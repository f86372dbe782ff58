"""The API over HTTP (uvicorn) on real SQLite and Redis brokers, with a real worker and the mock renderer."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import dramatiq
import httpx
import pytest
from api_support import MOUNT, LiveServer, OpenApiChecker, checker, poll  # noqa: F401 - fixtures
from conftest import REPO, chapter_request
from starlette.applications import Starlette
from starlette.routing import Mount

from preview_actors.runtime import Runtime
from preview_api import create_app

TOKEN = "e2e-token-0123456789"
KEY = "e2e-signing-key"
#: The mock renderer's run time: long enough to see it render, short enough for a test.
MOCK_DELAY_MS = 1200


@pytest.fixture(params=["sqlite", "redis"])
def served(
    request: pytest.FixtureRequest,
    runtime_factory: Callable[..., Runtime],
    checker: OpenApiChecker,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Runtime, httpx.Client, Callable[[], dramatiq.Worker]]]:
    """The API mounted at /api/preview under uvicorn, a checked client, and a way to start a worker."""
    monkeypatch.setenv("PREVIEW_MOCK_DELAY_MS", str(MOCK_DELAY_MS))
    runtime = runtime_factory(str(request.param), api_token=TOKEN, signing_key=KEY)
    host = Starlette(routes=[Mount(MOUNT, app=create_app())])
    workers: list[dramatiq.Worker] = []

    def start_worker() -> dramatiq.Worker:
        worker = dramatiq.Worker(runtime.broker, worker_threads=4, worker_timeout=100)
        worker.start()
        workers.append(worker)
        return worker

    with LiveServer(host) as server, httpx.Client(base_url=server.url, event_hooks={"response": [checker]}) as client:
        try:
            yield runtime, client, start_worker
        finally:
            for worker in workers:
                worker.stop()


def test_submit_follow_download(served: tuple[Runtime, httpx.Client, Callable[[], dramatiq.Worker]]) -> None:
    runtime, client, start_worker = served
    start_worker()

    # Given a job submitted over HTTP
    answer = client.post(f"{MOUNT}/", json=chapter_request(steps=3))
    assert answer.status_code == 202, answer.text
    submitted = answer.json()
    assert submitted["statusUrl"] == f"{client.base_url}{MOUNT}/{submitted['jobId']}/status"

    # When its status is polled until it is final
    history = list(
        poll(lambda: client.get(submitted["statusUrl"]).json(), lambda s: s["state"] in ("succeeded", "failed"), timeout_s=60)
    )

    # Then it went through rendering (seen while the renderer ran) and succeeded, progress never going back
    states = [status["state"] for status in history]
    assert "rendering" in states, states
    assert states[-1] == "succeeded", history[-1]
    progress = [status["progress"] for status in history]
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert any(0 < value < 1 for value in progress)
    final = history[-1]
    assert final["attempts"] == 1 and final["error"] is None

    # And the video downloads by its signed URL, matching container.json
    video = final["artifact"]["video"]
    download = httpx.get(video["url"])  # no token: the URL is the credential
    assert download.status_code == 200
    container = json.loads((runtime.settings.data_dir / "jobs" / final["jobId"] / "container.json").read_text())
    recorded = next(entry for entry in container["artifacts"] if entry["role"] == "video")
    assert hashlib.sha256(download.content).hexdigest() == recorded["sha256"] == video["sha256"]
    assert len(download.content) == recorded["size"] == video["size"]
    assert download.headers["etag"] == f'"{recorded["sha256"]}"'

    # And ranges of it come back byte for byte
    data = download.content
    size = len(data)
    for header, first, last in (
        ("bytes=0-15", 0, 15),
        (f"bytes={size // 2}-{size // 2 + 99}", size // 2, size // 2 + 99),
        ("bytes=-32", size - 32, size - 1),
    ):
        part = client.get(video["url"], headers={"Range": header})
        assert part.status_code == 206, header
        assert part.content == data[first : last + 1], header
        assert part.headers["content-range"] == f"bytes {first}-{last}/{size}"
    unsatisfiable = client.get(video["url"], headers={"Range": f"bytes={size}-"})
    assert unsatisfiable.status_code == 416
    assert unsatisfiable.headers["content-range"] == f"bytes */{size}"

    # And the bearer token works as well as the signature
    by_token = client.get(f"{MOUNT}/{final['jobId']}/artifact", headers={"Authorization": f"Bearer {TOKEN}"})
    assert by_token.content == data


def test_example_client_submits_follows_and_verifies(
    served: tuple[Runtime, httpx.Client, Callable[[], dramatiq.Worker]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runtime, client, start_worker = served
    start_worker()
    chapter = tmp_path / "chapter.json"
    chapter.write_text(json.dumps(chapter_request()["previewRequest"]))  # a bare previewRequest
    out = tmp_path / "preview.mp4"

    example = _load_example(REPO / "examples" / "submit_and_download.py")
    code = example.main([f"{client.base_url}{MOUNT}", str(chapter), "--token", TOKEN, "--out", str(out), "--timeout", "60"])

    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "verified" in captured.out
    assert "rendering" in captured.err or "succeeded" in captured.err
    job_id = captured.err.split()[1]
    container = json.loads((runtime.settings.data_dir / "jobs" / job_id / "container.json").read_text())
    recorded = next(entry for entry in container["artifacts"] if entry["role"] == "video")
    assert hashlib.sha256(out.read_bytes()).hexdigest() == recorded["sha256"]


def _load_example(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


