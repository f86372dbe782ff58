"""A full disk: DATA_DIR on a tiny tmpfs. Every accepted job still ends, none corrupt, none duplicated."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from conftest import IN_CI, chapter_request, running_worker, wait_for_state

from preview_actors import JobState, submit_preview
from preview_actors.runtime import Runtime
from preview_actors.storage import sha256_of_file

pytestmark = pytest.mark.slow

#: Room for a few dozen mock renders, then ENOSPC.
TMPFS_SIZE = "512k"


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if result.returncode != 0:
        message = f"cannot mount a tmpfs (needs root): {result.stderr.strip()}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_jobs_on_a_full_disk_end_failed_or_intact(runtime_factory, tiny_disk: Path) -> None:
    # Given DATA_DIR on a tmpfs too small for all the jobs (broker and store in Redis)
    runtime: Runtime = runtime_factory("redis", max_retries=1, retry_min_backoff_ms=20, retry_max_backoff_ms=50)
    runtime = _with_data_dir(runtime_factory, runtime, tiny_disk / "data")
    jobs = [submit_preview(chapter_request(steps=1 + n % 7, project=f"p{n}")).record.job_id for n in range(60)]

    # When the workers run them all
    with running_worker(runtime, threads=4):
        records = [wait_for_state(runtime, job, JobState.SUCCEEDED, JobState.FAILED, timeout_s=120) for job in jobs]

    # Then some failed for lack of space, with a clear error, and every success is intact
    failed = [r for r in records if r.state is JobState.FAILED]
    succeeded = [r for r in records if r.state is JobState.SUCCEEDED]
    assert failed and succeeded, f"{len(failed)} failed, {len(succeeded)} succeeded: the disk should fill midway"
    assert all("No space left on device" in r.error["message"] for r in failed), [r.error for r in failed][:3]
    data_dir = runtime.settings.data_dir
    for record in succeeded:
        container = json.loads((data_dir / "jobs" / record.job_id / "container.json").read_text())
        for entry in container["artifacts"]:
            assert sha256_of_file(data_dir / entry["path"]) == (entry["sha256"], entry["size"])
    videos = [path for path in (data_dir / "artifacts" / "sha256").rglob("*.mp4")]
    assert len(videos) == len({r.artifact["video"]["sha256"] for r in succeeded}) <= len(succeeded)
    temp = data_dir / "artifacts" / "tmp"
    assert not temp.exists() or os.listdir(temp) == []


def _with_data_dir(runtime_factory, runtime: Runtime, data_dir: Path) -> Runtime:
    import preview_actors

    return preview_actors.setup(attrs.evolve(runtime.settings, data_dir=data_dir))
