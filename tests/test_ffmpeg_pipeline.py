"""The pipeline with the real ffmpeg renderer: a real video, progress while rendering, hangs killed."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from conftest import chapter_request, running_worker, wait_for_state, wait_until
from PIL import Image

from preview_actors import JobState, submit_preview
from preview_actors.runtime import Runtime

pytestmark = pytest.mark.slow


def ffmpeg_output(ffmpeg: str, video: Path) -> str:
    return subprocess.run([ffmpeg, "-hide_banner", "-i", str(video)], capture_output=True, text=True).stderr


def test_a_job_renders_a_real_video_and_progress_advances_while_rendering(runtime_factory, ffmpeg: str) -> None:
    runtime: Runtime = runtime_factory("sqlite", renderer="ffmpeg")
    Image.new("RGB", (64, 48), (200, 40, 40)).save(runtime.settings.asset_root / "cover.png")
    subprocess.run(
        [
            *(ffmpeg, "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=2"),
            str(runtime.settings.asset_root / "tone.wav"),
        ],
        check=True,
    )
    # Long enough (12 steps of 2 s at 640x360) that progress is written several times while rendering.
    body = chapter_request(steps=12)
    preview = body["previewRequest"]
    preview["output"] = {"width": 640, "height": 360, "fps": 25}
    for step in preview["steps"]:
        step["durationMs"] = 2000
    preview["steps"][0]["asset"] = "cover"
    preview["assets"] = [
        {"id": "cover", "type": "image", "uri": "cover.png"},
        {"id": "tone", "type": "audio", "uri": "tone.wav"},
    ]
    preview["audio"] = {"asset": "tone", "volume": 0.8, "fadeOutMs": 300}
    seen: set[float] = set()

    with running_worker(runtime, threads=2):
        job_id = submit_preview(body).record.job_id

        def finished() -> bool:
            record = runtime.store.get(job_id)
            if record.state is JobState.RENDERING:
                seen.add(record.progress)
            return record.finished

        wait_until(finished, timeout_s=120, interval_s=0.005, what="the render to finish")
    record = runtime.store.get(job_id)

    assert record.state is JobState.SUCCEEDED, record.error
    assert len([p for p in seen if 0.05 < p < 0.9]) >= 2, f"progress seen while rendering: {sorted(seen)}"
    video = runtime.settings.data_dir / record.artifact["video"]["path"]
    info = ffmpeg_output(ffmpeg, video)
    assert "Duration: 00:00:24.0" in info
    assert "Video: h264" in info and "640x360" in info and "25 fps" in info
    assert "Audio: aac" in info
    container = json.loads((runtime.settings.data_dir / record.artifact["container"]["path"]).read_text())
    assert container["renderer"]["name"] == "ffmpeg"


def test_a_hanging_ffmpeg_is_killed_at_the_timeout_and_the_job_retried(runtime_factory, tmp_path: Path, monkeypatch) -> None:
    # Given an "ffmpeg" that never finishes and records its pid
    pids = tmp_path / "pids"
    fake = tmp_path / "ffmpeg"
    fake.write_text(f"#!/bin/sh\necho $$ >> {pids}\nexec sleep 1000\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PREVIEW_FFMPEG", str(fake))
    runtime: Runtime = runtime_factory("stub", renderer="ffmpeg", render_timeout_s=5.0, max_retries=1)
    Image.new("RGB", (32, 32), (1, 2, 3)).save(runtime.settings.asset_root / "cover.png")
    body = chapter_request()
    body["previewRequest"]["assets"] = [{"id": "cover", "type": "image", "uri": "cover.png"}]
    body["previewRequest"]["steps"][0]["asset"] = "cover"

    # When the job runs with a 5 s render timeout (room for the renderer to reach ffmpeg on a
    # loaded machine) and one retry
    with running_worker(runtime, threads=1):
        job_id = submit_preview(body).record.job_id
        record = wait_for_state(runtime, job_id, JobState.FAILED, JobState.SUCCEEDED, timeout_s=60)

    # Then both attempts timed out, and no process of theirs is left
    assert record.state is JobState.FAILED
    assert record.attempts == 2
    assert "timed out after 5s" in record.error["message"]
    started = [int(line) for line in pids.read_text().split()]
    assert len(started) >= 2
    wait_until(lambda: not any(os.path.exists(f"/proc/{pid}") and _not_zombie(pid) for pid in started),
               timeout_s=10, what="every fake ffmpeg to be gone")


def _not_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] != "Z"
    except OSError:
        return False
