"""Starting a worker as the README says: no metrics warning, and numbers of this run only.

The README's worker runs two processes. Without prometheus-client's
multiprocess directory only one of them can serve ``/metrics``, and the
other one warned at every start that its numbers were not served. With the
directory, what an earlier run left in it (its processes are gone) must not
be added to this run's numbers.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import REPO, chapter_request, wait_for_state
from workers import WorkerProcess, worker_env

from preview_actors import JobState, submit_preview
from preview_actors.runtime import Runtime

from .logtrace import parse_lines
from .support import free_port, leave_files_of_a_dead_process, scrape_until, value

README = REPO / "README.md"


def workers_section_commands() -> list[str]:
    """The shell lines of the README's "Workers" section."""
    section = README.read_text().split("### Workers", 1)[1].split("\n### ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_the_readme_worker_gives_its_processes_a_metrics_directory() -> None:
    lines = workers_section_commands()
    [start] = [line for line in lines if "dramatiq preview_actors" in line]
    processes = re.search(r"--processes (\d+)", start)
    if processes is None or int(processes.group(1)) > 1:  # dramatiq starts one process per CPU by default
        directory = re.search(r"PROMETHEUS_MULTIPROC_DIR=(\S+)", start)
        assert directory is not None, f"several processes without PROMETHEUS_MULTIPROC_DIR: {start}"
        assert any(line.startswith("mkdir -p") and directory.group(1) in line for line in lines), lines


@pytest.mark.slow
def test_a_multiprocess_worker_starts_without_warnings_and_from_zero(
    tmp_path: Path, redis_runtime: Callable[..., Runtime], worker_processes: Callable[..., WorkerProcess]
) -> None:
    # Given a metrics directory an earlier run left files in
    runtime = redis_runtime()
    directory = tmp_path / "prometheus"
    directory.mkdir()
    leave_files_of_a_dead_process(directory)
    port = free_port()

    # When a worker of two processes starts on it and renders a job
    worker = worker_processes(
        runtime,
        processes=2,
        PROMETHEUS_MULTIPROC_DIR=str(directory),
        PREVIEW_METRICS_PORT=str(port),
        PREVIEW_LOG_FORMAT="json",
    )
    job_id = submit_preview(chapter_request()).record.job_id
    assert wait_for_state(runtime, job_id, JobState.SUCCEEDED, JobState.FAILED).state is JobState.SUCCEEDED
    samples = scrape_until(
        f"http://127.0.0.1:{port}/metrics",
        lambda found: value(found, "preview_stage_duration_seconds_count", stage="finalize") == 1,
        what="the job's finalize stage in the scrape",
    )

    # Then no process warned about metrics (this private Redis keeps nothing: that warning is right),
    # and the scrape counts this run only
    records, _ = parse_lines(worker.output)
    warned = [r for r in records if r["level"] in ("warning", "error", "critical")]
    assert [r["message"] for r in warned if "metrics" in r["logger"] or "etrics" in r["message"]] == []
    assert value(samples, "preview_renders_in_progress") == 0
    assert value(samples, "preview_jobs_completed_total", outcome="succeeded") == 1


def test_a_missing_metrics_directory_is_named(runtime_factory: Callable[..., Runtime], tmp_path: Path) -> None:
    # prometheus-client opens its files when a metric is declared, at import: say what is wrong there
    env = worker_env(runtime_factory("stub"), PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "missing"))
    started = subprocess.run(
        [sys.executable, "-c", "import preview_actors"], env=env, cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert started.returncode != 0
    assert started.stderr.strip().splitlines()[-1].endswith(
        f"PROMETHEUS_MULTIPROC_DIR: {tmp_path / 'missing'} is not a directory (create it before starting)"
    ), started.stderr
