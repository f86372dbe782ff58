"""Canary secrets never leak into logs, files under DATA_DIR or job statuses.

The API's HTTP answers are to be checked the same way (the API tests can add
them to :func:`leaks`).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import chapter_request, wait_for_state, wait_until
from workers import WorkerProcess

from preview_actors import JobState, submit_preview
from preview_actors.runtime import Runtime


class _Unavailable(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Silent."""


@contextlib.contextmanager
def unavailable_asset_server() -> Iterator[int]:
    """An HTTP server on 127.0.0.1 that answers 503 to everything (a retryable download failure); yields its port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Unavailable)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def leaks(canaries: Iterable[str], documents: dict[str, bytes]) -> list[tuple[str, str]]:
    """(canary, where) for every canary found in any document."""
    return [(canary, where) for where, data in documents.items() for canary in canaries if canary.encode() in data]


def files_below(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


@pytest.mark.slow
def test_canary_secrets_appear_nowhere(
    redis_runtime: Callable[..., Runtime], worker_processes: Callable[..., WorkerProcess]
) -> None:
    canaries = {name: f"canary-{name}-{secrets.token_hex(8)}" for name in ("token", "key", "redis", "signature")}
    with unavailable_asset_server() as asset_port:
        # Given a worker on a Redis with a password, holding an API token and a signing key,
        # logging JSON at DEBUG level
        runtime = redis_runtime(
            password=canaries["redis"],
            api_token=canaries["token"],
            signing_key=canaries["key"],
            asset_allowed_hosts=frozenset({"127.0.0.1"}),
        )
        worker = worker_processes(
            runtime,
            args=("--verbose",),
            PREVIEW_LOG_FORMAT="json",
            PREVIEW_API_TOKEN=canaries["token"],
            PREVIEW_SIGNING_KEY=canaries["key"],
            PREVIEW_ASSET_ALLOWED_HOSTS="127.0.0.1",
        )

        # When one job succeeds and another fails for good, its signed asset URL unavailable
        # (every attempt logs a traceback naming the URL)
        succeeded = submit_preview(chapter_request()).record.job_id
        body = chapter_request()
        signed_url = f"http://127.0.0.1:{asset_port}/cover.png?expires=1700000000&X-Amz-Signature={canaries['signature']}"
        body["previewRequest"]["assets"] = [{"id": "cover", "type": "image", "uri": signed_url}]  # type: ignore[index]
        body["previewRequest"]["steps"][0]["asset"] = "cover"  # type: ignore[index]
        failed = submit_preview(body).record.job_id
        assert wait_for_state(runtime, succeeded, JobState.SUCCEEDED, JobState.FAILED).state is JobState.SUCCEEDED
        assert wait_for_state(runtime, failed, JobState.SUCCEEDED, JobState.FAILED).state is JobState.FAILED
        wait_until(lambda: "dead-lettered" in worker.output, timeout_s=10, what="the failure to be logged")

    # Then no canary is in the worker's output, any file under DATA_DIR or the job statuses
    output = worker.output
    statuses = {f"status of {job_id}": json.dumps(runtime.store.get(job_id).to_status()) for job_id in (succeeded, failed)}
    documents = {
        "worker output": output.encode(),
        **{name: text.encode() for name, text in statuses.items()},
        **files_below(runtime.settings.data_dir),
    }
    assert len(documents) > 5  # logs, container.json, the artifacts…
    assert leaks(canaries.values(), documents) == []
    # And the lines and messages that held them were written, masked rather than dropped
    assert "redis://:***@127.0.0.1" in output  # each worker process's boot line
    assert output.count("Traceback") >= 2 and "X-Amz-Signature=***" in output
    # The job's error names the asset by its uri without the query string (where signatures live)
    assert "cover.png?\\u2026" in statuses[f"status of {failed}"]
    assert "X-Amz-Signature" not in statuses[f"status of {failed}"]
