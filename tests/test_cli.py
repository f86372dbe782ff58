"""``preview-worker render``: the whole pipeline in one process, on the embedded SQLite defaults."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, chapter_request

from preview_actors.storage import sha256_of_file


def run_cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {name: value for name, value in os.environ.items() if not name.startswith(("PREVIEW_", "DATA_DIR"))}
    environment.update(DATA_DIR=str(tmp_path / "data"), PREVIEW_RENDERER="mock", **env)
    return subprocess.run(
        [sys.executable, "-m", "preview_worker", *args],
        env=environment,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def chapter(tmp_path: Path) -> Path:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "cover.png").write_bytes(b"\x89PNG fake, the mock renderer only checks it exists")
    body = chapter_request()
    body["previewRequest"]["assets"] = [{"id": "cover", "type": "image", "uri": "images/cover.png"}]
    body["previewRequest"]["steps"][0]["asset"] = "cover"
    path = tmp_path / "chapter.json"
    path.write_text(json.dumps(body))
    return path


def test_render_json_prints_where_the_video_and_container_are(tmp_path: Path, chapter: Path) -> None:
    result = run_cli(tmp_path, "render", str(chapter), "--json")

    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert output["state"] == "succeeded"
    container = json.loads(Path(output["container"]).read_text())
    video = next(entry for entry in container["artifacts"] if entry["role"] == "video")
    assert Path(output["video"]) == tmp_path / "data" / video["path"]
    assert sha256_of_file(output["video"]) == (video["sha256"], video["size"])
    assert (tmp_path / "data" / "queue.db").exists()  # the embedded SQLite broker


def test_render_text_output_and_dry_run(tmp_path: Path, chapter: Path) -> None:
    result = run_cli(tmp_path, "render", str(chapter), "--dry-run")

    assert result.returncode == 0, result.stderr
    assert "succeeded" in result.stdout
    assert "poster:" in result.stdout and "container:" in result.stdout
    assert "video:" not in result.stdout


def test_render_accepts_a_bare_preview_request(tmp_path: Path, chapter: Path) -> None:
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(json.loads(chapter.read_text())["previewRequest"]))

    result = run_cli(tmp_path, "render", str(bare), "--json")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["state"] == "succeeded"


def test_render_refuses_an_invalid_chapter_naming_the_field(tmp_path: Path, chapter: Path) -> None:
    body = json.loads(chapter.read_text())
    body["previewRequest"]["steps"][1]["durationMs"] = "3000"
    chapter.write_text(json.dumps(body))

    result = run_cli(tmp_path, "render", str(chapter))

    assert result.returncode == 2
    assert "previewRequest.steps[1].durationMs" in result.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "is not valid JSON"), ('{"a": NaN}', "NaN is not a valid JSON number"), ("[1, 2]", "must hold a JSON object")],
)
def test_render_refuses_files_that_are_not_a_request(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    result = run_cli(tmp_path, "render", str(path))
    assert result.returncode != 0
    assert message in result.stderr


def test_render_reports_a_missing_file(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "render", str(tmp_path / "absent.json"))
    assert result.returncode != 0
    assert "cannot read" in result.stderr


def test_render_reports_a_failed_job(tmp_path: Path, chapter: Path) -> None:
    result = run_cli(tmp_path, "render", str(chapter), "--json", PREVIEW_MOCK_EXIT_CODE="2")
    assert result.returncode == 2  # the renderer refused the input: bad input, like an invalid chapter
    output = json.loads(result.stdout)
    assert output["state"] == "failed"
    assert "refused the input" in output["error"]["message"]


def test_invalid_setting_is_named(tmp_path: Path, chapter: Path) -> None:
    result = run_cli(tmp_path, "render", str(chapter), PREVIEW_RENDER_TIMEOUT_S="soon")
    assert result.returncode == 2
    assert "PREVIEW_RENDER_TIMEOUT_S" in result.stderr


@pytest.mark.parametrize(
    ("state", "exit_code", "stream", "message"),
    [
        ("succeeded", 1, "stderr", "has already succeeded; nothing to cancel"),
        ("failed", 1, "stderr", "has already failed; nothing to cancel"),
        ("cancelled", 0, "stdout", "was cancelled already"),
    ],
)
def test_cancel_of_a_finished_job_says_so(
    runtime_factory: Any, state: str, exit_code: int, stream: str, message: str
) -> None:
    import uuid

    from workers import worker_env

    from preview_actors.store import JobRecord, JobState

    # Given a job that has ended
    runtime = runtime_factory("sqlite")
    job_id = str(uuid.uuid4())
    runtime.store.create(
        JobRecord(
            job_id=job_id,
            project_id="project-1",
            request_id="r-1",
            content_sha256="0" * 64,
            request={},
            state=JobState(state),
            progress=1.0,
            enqueued=True,
        )
    )

    # When an operator cancels it
    result = subprocess.run(
        [sys.executable, "-m", "preview_worker", "cancel", job_id],
        env=worker_env(runtime), cwd=REPO, capture_output=True, text=True, timeout=120,
    )

    # Then the command says it had finished, and fails unless it is cancelled already
    assert result.returncode == exit_code, (result.stdout, result.stderr)
    assert f"job {job_id} {message}" in getattr(result, stream)
    assert runtime.store.get(job_id).state is JobState(state)
