"""The renderer's warnings reach the job: its record, its status object, and a metric.

The mock renderer reports the warnings of ``PREVIEW_MOCK_WARNINGS`` (a JSON
value written as ``report.json``'s ``warnings``), so the plumbing is checked
on every broker without ffmpeg; one test goes through the real ffmpeg
renderer with a character no font covers. The status over HTTP is
``tests/api/test_status_warnings.py``.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from conftest import (
    REDIS_URL,
    REPO,
    chapter_request,
    require_server,
    running_worker,
    wait_for_state,
)
from prometheus_client import REGISTRY

from preview_actors import JobState, stages, submit_preview
from preview_actors.render_report import (
    MAX_MESSAGE_CHARS,
    MAX_WARNINGS,
    RenderWarning,
    warnings_from,
)
from preview_actors.renderer import renderer_environment
from preview_actors.runtime import Runtime
from preview_actors.store import JobRecord, open_store

#: What a renderer might report: a font gap on one step, a clip cut short on another.
WARNINGS = [
    {"code": "missing_glyphs", "message": "step 'intro': no installed font covers U+E000", "step": "step-0"},
    {"code": "truncated_asset", "message": "asset 'clip' (uri clip.mp4): 1.2 s of 4 s could be decoded", "step": "step-1"},
    {"code": "missing_glyphs", "message": "step 'outro': no installed font covers U+E001", "step": "step-1"},
]


def warnings_counted(kind: str) -> float:
    return REGISTRY.get_sample_value("preview_render_warnings_total", {"kind": kind}) or 0.0


def mock_warns(monkeypatch: pytest.MonkeyPatch, warnings: object) -> None:
    monkeypatch.setenv("PREVIEW_MOCK_WARNINGS", json.dumps(warnings))


# -- the pipeline, on every broker ----------------------------------------------------------------


def test_warnings_reach_the_job_record_and_the_metric(
    runtime: Runtime, worker: dramatiq.Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a renderer that reports three warnings, two of one kind
    mock_warns(monkeypatch, WARNINGS)
    before = {kind: warnings_counted(kind) for kind in ("missing_glyphs", "truncated_asset")}

    # When a job renders
    job_id = submit_preview(chapter_request()).record.job_id
    record = wait_for_state(runtime, job_id, JobState.SUCCEEDED, JobState.FAILED)

    # Then the job succeeded with the warnings in its record and its status, in order
    assert record.state is JobState.SUCCEEDED, record.error
    assert [warning.to_json() for warning in record.warnings] == WARNINGS
    assert record.to_status()["warnings"] == WARNINGS
    assert runtime.store.get(job_id) == record
    # and each was counted once, by kind
    assert warnings_counted("missing_glyphs") - before["missing_glyphs"] == 2
    assert warnings_counted("truncated_asset") - before["truncated_asset"] == 1


def test_a_job_without_warnings_shows_an_empty_list(runtime: Runtime, worker: dramatiq.Worker) -> None:
    job_id = submit_preview(chapter_request(dryRun=True)).record.job_id

    record = wait_for_state(runtime, job_id, JobState.SUCCEEDED, JobState.FAILED)

    assert record.state is JobState.SUCCEEDED, record.error
    assert record.warnings == ()
    assert record.to_status()["warnings"] == []


# -- when they are recorded, and counted ----------------------------------------------------------


def test_warnings_are_recorded_when_the_render_ends_and_counted_once(
    runtime_factory: Callable[..., Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a job on the stub broker, rendered by calling the stage itself (no worker)
    runtime = runtime_factory("stub")
    mock_warns(monkeypatch, WARNINGS)
    job_id = submit_preview(chapter_request()).record.job_id
    before = warnings_counted("missing_glyphs")

    # When the render stage runs, and its message is delivered again
    rendered = stages.render(runtime, job_id)
    again = stages.render(runtime, job_id)

    # Then the job is hashing and its status shows the warnings already
    record = runtime.store.get(job_id)
    assert record is not None and record.state is JobState.HASHING
    assert record.to_status()["warnings"] == WARNINGS
    assert again == {"skipped": True}
    assert warnings_counted("missing_glyphs") - before == 2  # not again for the redelivery
    # and the later stages keep them
    hashed = stages.hash_artifacts(runtime, job_id, rendered)
    stages.finalize(runtime, job_id, hashed)
    final = runtime.store.get(job_id)
    assert final is not None and final.state is JobState.SUCCEEDED
    assert [warning.to_json() for warning in final.warnings] == WARNINGS
    assert warnings_counted("missing_glyphs") - before == 2


def test_a_new_render_attempt_starts_without_the_warnings_of_an_earlier_one(
    runtime_factory: Callable[..., Runtime],
) -> None:
    # Given a job whose record holds warnings of an earlier render (a job replayed)
    runtime = runtime_factory("stub")
    job_id = submit_preview(chapter_request()).record.job_id
    runtime.store.update(job_id, warnings=(RenderWarning("missing_glyphs", "old"),))

    # When its render stage runs with a renderer that warns of nothing
    stages.render(runtime, job_id)

    # Then the record holds no warning
    record = runtime.store.get(job_id)
    assert record is not None and record.state is JobState.HASHING
    assert record.warnings == ()


def test_finalize_still_takes_renderer_and_cache_from_a_message_without_the_report_summary(
    runtime_factory: Callable[..., Runtime],
) -> None:
    # Given a job rendered, and a hash message built without the report's summary (as the
    # reconciliation builds one, or an earlier release sent)
    runtime = runtime_factory("stub")
    job_id = submit_preview(chapter_request()).record.job_id
    rendered = stages.render(runtime, job_id)
    legacy = {key: rendered[key] for key in ("attempt", "outDir", "dryRun")}
    misses = REGISTRY.get_sample_value("preview_segment_cache_total", {"result": "miss"}) or 0.0

    # When the job is hashed and finalized from it
    stages.finalize(runtime, job_id, stages.hash_artifacts(runtime, job_id, legacy))

    # Then container.json names the renderer and the segment cache is counted, from report.json
    record = runtime.store.get(job_id)
    assert record is not None and record.state is JobState.SUCCEEDED, record
    container = json.loads((runtime.settings.data_dir / record.artifact["container"]["path"]).read_text())
    assert container["renderer"] == {"name": "mock", "version": "1.0.0"}
    assert (REGISTRY.get_sample_value("preview_segment_cache_total", {"result": "miss"}) or 0.0) - misses == 2


# -- malformed warnings ---------------------------------------------------------------------------


def test_malformed_warnings_are_dropped_with_a_log_line(
    runtime_factory: Callable[..., Runtime], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a renderer reporting good warnings among bad ones
    runtime = runtime_factory("stub")
    good = {"code": "missing_glyphs", "message": "no font covers U+E000", "step": "step-0"}
    mock_warns(
        monkeypatch,
        [
            "a string",
            {"message": "no code"},
            {"code": "Not A Code!", "message": "bad code"},
            {"code": "x" * 65, "message": "code too long"},
            {"code": "no_message"},
            {"code": "empty_message", "message": ""},
            {"code": "number_message", "message": 3},
            {"code": "bad_step", "message": "m", "step": 7},
            good,
            {"code": "no_step", "message": "m", "step": None, "extra": {"kept": False}},
        ],
    )
    caplog.set_level(logging.WARNING)

    # When a job renders
    with running_worker(runtime, threads=1):
        job_id = submit_preview(chapter_request()).record.job_id
        record = wait_for_state(runtime, job_id, JobState.SUCCEEDED, JobState.FAILED)

    # Then it succeeded with the good ones only, and each bad one was logged
    assert record.state is JobState.SUCCEEDED, record.error
    assert record.to_status()["warnings"] == [good, {"code": "no_step", "message": "m"}]
    dropped = [r for r in caplog.records if "dropped a malformed warning" in r.getMessage()]
    assert len(dropped) == 8, [r.getMessage() for r in dropped]


@pytest.mark.parametrize("report_warnings", [{"code": "x", "message": "y"}, "none", 42, None])
def test_warnings_that_are_not_a_list_are_dropped(
    runtime_factory: Callable[..., Runtime],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    report_warnings: object,
) -> None:
    runtime = runtime_factory("stub")
    mock_warns(monkeypatch, report_warnings)
    caplog.set_level(logging.WARNING)

    with running_worker(runtime, threads=1):
        job_id = submit_preview(chapter_request()).record.job_id
        record = wait_for_state(runtime, job_id, JobState.SUCCEEDED, JobState.FAILED)

    assert record.state is JobState.SUCCEEDED, record.error
    assert record.warnings == ()
    assert "warnings is not a list" in caplog.text


def test_a_report_json_that_is_not_an_object_records_no_warnings(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from preview_actors.render_report import read_report

    caplog.set_level(logging.WARNING)
    for name, content in (("list.json", "[1, 2]"), ("broken.json", "{not json"), ("missing.json", None)):
        path = tmp_path / name
        if content is not None:
            path.write_text(content)

        report = read_report(path)

        assert report.warnings == () and report.renderer_name is None, name
    assert caplog.text.count("report.json") >= 3


def test_warnings_are_capped_in_count_and_message_length(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    many = [{"code": "missing_glyphs", "message": f"warning {n}"} for n in range(MAX_WARNINGS + 25)]
    many[0]["message"] = "é" * (MAX_MESSAGE_CHARS + 500)

    warnings = warnings_from(many)

    assert len(warnings) == MAX_WARNINGS
    assert [w.message for w in warnings[1:3]] == ["warning 1", "warning 2"]
    assert len(warnings[0].message) == MAX_MESSAGE_CHARS and warnings[0].message.endswith("…")
    assert "25 more warnings" in caplog.text


def test_a_long_list_of_warnings_is_capped_on_the_job(
    runtime_factory: Callable[..., Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = runtime_factory("stub")
    # (one environment string holds at most 128 KiB: a few long messages, many short ones)
    long = [{"code": "missing_glyphs", "message": "m" * (MAX_MESSAGE_CHARS * 2)}] * 5
    mock_warns(monkeypatch, long + [{"code": "missing_glyphs", "message": "short"}] * (MAX_WARNINGS * 2))

    with running_worker(runtime, threads=1):
        job_id = submit_preview(chapter_request()).record.job_id
        record = wait_for_state(runtime, job_id, JobState.SUCCEEDED, JobState.FAILED)

    assert record.state is JobState.SUCCEEDED, record.error
    assert len(record.warnings) == MAX_WARNINGS
    assert [len(warning.message) for warning in record.warnings[:6]] == [MAX_MESSAGE_CHARS] * 5 + [len("short")]


# -- stores of an earlier release -----------------------------------------------------------------


def old_record(**fields: object) -> JobRecord:
    values: dict[str, Any] = {
        "job_id": str(uuid.uuid4()), "project_id": "p", "request_id": "r", "content_sha256": "abc", "request": {"projectId": "p"},
    }
    values.update(fields)
    return JobRecord(**values)


def test_a_job_database_from_before_warnings_is_upgraded_in_place(tmp_path: Path) -> None:
    # Given a jobs.db written by the previous release (no warnings column)
    path = tmp_path / "jobs.db"
    job = old_record(state=JobState.SUCCEEDED, progress=1.0)
    fields = {name: value for name, value in job.to_fields().items() if name != "warnings"}
    with sqlite3.connect(path) as connection:
        connection.execute(f"CREATE TABLE preview_jobs ({', '.join(f'{n} TEXT' for n in fields)}, PRIMARY KEY (job_id))")
        connection.execute(
            f"INSERT INTO preview_jobs ({', '.join(fields)}) VALUES ({', '.join('?' * len(fields))})", list(fields.values())
        )
    connection.close()

    # When this release opens it
    store = open_store(f"sqlite:///{path}")
    try:
        # Then the old job reads with no warnings, and a new job stores them
        old = store.get(job.job_id)
        assert old is not None and old.warnings == () and old.to_status()["warnings"] == []
        fresh = old_record()
        store.create(fresh)
        warned = store.update(fresh.job_id, warnings=(RenderWarning("missing_glyphs", "U+E000", "intro"),))
        assert warned is not None and store.get(fresh.job_id) == warned
        assert warned.to_status()["warnings"] == [{"code": "missing_glyphs", "message": "U+E000", "step": "intro"}]
    finally:
        store.close()


def test_a_redis_record_from_before_warnings_reads_as_none(tmp_path: Path) -> None:
    require_server("Redis", "127.0.0.1", 6379)
    store = open_store(REDIS_URL)
    try:
        # Given a job hash written by the previous release (no warnings field)
        job = old_record(state=JobState.RENDERING)
        store.create(job)
        store.client.hdel(store.job_key(job.job_id), "warnings")
        assert "warnings" not in store.client.hgetall(store.job_key(job.job_id))

        # Then it reads with no warnings, and its status shows an empty list
        record = store.get(job.job_id)
        assert record is not None and record.warnings == ()
        assert record.to_status()["warnings"] == []
        # and updating it adds them
        updated = store.update(job.job_id, warnings=(RenderWarning("truncated_asset", "cut", None),))
        assert updated is not None and store.get(job.job_id) == updated
        assert updated.to_status()["warnings"] == [{"code": "truncated_asset", "message": "cut"}]
    finally:
        store.client.delete(store.job_key(job.job_id))
        store.client.srem(store.unfinished_key, job.job_id)
        store.close()


# -- the mock renderer and the documents ----------------------------------------------------------


def test_the_mock_warnings_pass_the_renderer_environment_allow_list() -> None:
    assert renderer_environment({"PREVIEW_MOCK_WARNINGS": "[]", "PREVIEW_API_TOKEN": "secret"}) == {
        "PREVIEW_MOCK_WARNINGS": "[]"
    }


def test_the_mock_renderer_refuses_warnings_that_are_not_json(tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"specVersion": 1, "output": {}, "steps": [], "assets": {}}))

    result = subprocess.run(
        [sys.executable, "-m", "renderers.mock", str(spec), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        env={**renderer_environment(), "PREVIEW_MOCK_WARNINGS": "[{oops"},
        timeout=30,
    )

    assert result.returncode == 2
    assert "PREVIEW_MOCK_WARNINGS" in result.stderr and "Traceback" not in result.stderr


# -- through the real ffmpeg renderer -------------------------------------------------------------


def test_a_character_no_font_covers_is_a_warning_in_the_jobs_status(
    runtime_factory: Callable[..., Runtime], ffmpeg: str
) -> None:
    # Given a chapter whose second step's title has a Private Use Area character, rendered by ffmpeg
    runtime = runtime_factory("stub", renderer="ffmpeg")
    body = chapter_request()
    preview = body["previewRequest"]
    assert isinstance(preview, dict)
    preview["output"] = {"width": 160, "height": 90, "fps": 10}
    preview["steps"][1]["title"] = "Tap \ue000 to start"
    before = warnings_counted("missing_glyphs")

    # When it renders
    with running_worker(runtime, threads=1):
        job_id = submit_preview(body).record.job_id
        record = wait_for_state(runtime, job_id, JobState.SUCCEEDED, JobState.FAILED, timeout_s=120)

    # Then the job succeeded, and its status names the step and U+E000
    assert record.state is JobState.SUCCEEDED, record.error
    warnings = record.to_status()["warnings"]
    assert [(w["code"], w.get("step")) for w in warnings] == [("missing_glyphs", "step-1")]
    assert "U+E000" in warnings[0]["message"]
    assert warnings_counted("missing_glyphs") - before == 1
