"""Prometheus metrics: counted by the Metrics middleware and the stages, served by the worker."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from conftest import chapter_request, running_worker, wait_for_state, wait_until
from prometheus_client import REGISTRY
from workers import WorkerProcess

from preview_actors import ConfigError, JobState, Settings, submit_preview
from preview_actors.runtime import Runtime

from .logtrace import parse_lines
from .support import api_server, free_port, scrape, scrape_until, value

STAGES = ("render", "hash", "finalize")
ROLES = ("video", "poster", "plan", "report", "log")


def snapshot() -> dict[str, float]:
    """The pipeline's counters in this process now (the default registry, no multiprocess mode here)."""

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    taken = {
        "succeeded": sample("preview_jobs_completed_total", outcome="succeeded"),
        "failed": sample("preview_jobs_completed_total", outcome="failed"),
        "dead_lettered": sample("preview_jobs_dead_lettered_total"),
        "job_durations": sample("preview_job_duration_seconds_count"),
        "hits": sample("preview_segment_cache_total", result="hit"),
        "misses": sample("preview_segment_cache_total", result="miss"),
    }
    for stage in STAGES:
        taken[f"retries.{stage}"] = sample("preview_job_retries_total", stage=stage)
        taken[f"duration.{stage}"] = sample("preview_stage_duration_seconds_count", stage=stage)
    for role in ROLES:
        taken[f"bytes.{role}"] = sample("preview_artifact_bytes_count", role=role)
        taken[f"bytes_sum.{role}"] = sample("preview_artifact_bytes_sum", role=role)
    return taken


def changes(before: dict[str, float]) -> dict[str, float]:
    """What changed since ``before`` (unchanged counters left out)."""
    after = snapshot()
    return {name: after[name] - before[name] for name in after if after[name] != before[name]}


def missing_asset_request() -> dict[str, object]:
    body = chapter_request()
    body["previewRequest"]["assets"] = [{"id": "cover", "type": "image", "uri": "images/missing.png"}]  # type: ignore[index]
    body["previewRequest"]["steps"][0]["asset"] = "cover"  # type: ignore[index]
    return body


def test_retries_dead_letter_and_failure_are_counted(runtime_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a renderer that always fails in a retryable way, and two retries allowed
    runtime = runtime_factory("stub", max_retries=2)
    monkeypatch.setenv("PREVIEW_MOCK_EXIT_CODE", "3")
    before = snapshot()

    # When a job runs out of retries
    with running_worker(runtime, threads=1):
        job_id = submit_preview(chapter_request()).record.job_id
        wait_for_state(runtime, job_id, JobState.FAILED)

    # Then two retries of the render stage, one dead letter and one failed job are counted,
    # and each of the three render attempts was timed (Metrics runs before JobStatus records the failure)
    assert changes(before) == {"retries.render": 2, "dead_lettered": 1, "failed": 1, "duration.render": 3}


def test_a_succeeded_job_counts_stages_duration_artifacts_and_segments(runtime_factory) -> None:
    runtime = runtime_factory("stub")
    before = snapshot()

    with running_worker(runtime):
        job_id = submit_preview(chapter_request(steps=3)).record.job_id
        record = wait_for_state(runtime, job_id, JobState.SUCCEEDED, JobState.FAILED)
        # The finalize stage is timed once its message is done, just after the job is marked succeeded
        wait_until(lambda: changes(before).get("duration.finalize") == 1, timeout_s=10, what="finalize to be timed")

    assert record.state is JobState.SUCCEEDED, record.error
    changed = changes(before)
    video_bytes = changed.pop("bytes_sum.video")
    assert video_bytes == record.artifact["video"]["size"]
    assert {name: delta for name, delta in changed.items() if not name.startswith("bytes_sum.")} == {
        "succeeded": 1,
        "job_durations": 1,
        "misses": 3,  # the mock renderer reuses no segment
        **{f"duration.{stage}": 1 for stage in STAGES},
        **{f"bytes.{role}": 1 for role in ROLES},
    }


def test_waiting_for_a_render_slot_is_not_a_retry(runtime_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given one render slot, slow renders and two worker threads
    runtime = runtime_factory("stub", max_concurrency=1)
    monkeypatch.setenv("PREVIEW_MOCK_DELAY_MS", "300")
    before = snapshot()

    # When two jobs are submitted at once (the second waits for the slot)
    with running_worker(runtime, threads=2):
        jobs = [submit_preview(chapter_request(steps=n + 1)).record.job_id for n in range(2)]
        for job_id in jobs:
            assert wait_for_state(runtime, job_id, JobState.SUCCEEDED, JobState.FAILED).state is JobState.SUCCEEDED
        wait_until(lambda: changes(before).get("duration.finalize") == 2, timeout_s=10, what="both finalizes")

    # Then no retry is counted, and only the two real renders are timed
    changed = changes(before)
    assert not any(name.startswith("retries.") for name in changed)
    assert changed["duration.render"] == 2


@pytest.mark.slow
def test_worker_serves_the_metrics_of_all_its_processes(
    redis_runtime: Callable[..., Runtime], worker_processes: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    # Given a worker of two processes sharing a multiprocess directory, serving /metrics
    runtime = redis_runtime()
    multiproc_dir = tmp_path / "prometheus"
    multiproc_dir.mkdir()
    port = free_port()
    worker = worker_processes(
        runtime,
        processes=2,
        threads=2,
        PROMETHEUS_MULTIPROC_DIR=str(multiproc_dir),
        PREVIEW_METRICS_PORT=str(port),
        PREVIEW_LOG_FORMAT="json",
        PREVIEW_MOCK_DELAY_MS="300",  # renders last long enough for both processes to take some
    )
    url = f"http://127.0.0.1:{port}/metrics"

    # When six jobs succeed and one fails permanently (its asset is missing)
    succeeding = [submit_preview(chapter_request(steps=n % 3 + 1)).record.job_id for n in range(6)]
    failing = submit_preview(missing_asset_request()).record.job_id
    for job_id in succeeding:
        record = wait_for_state(runtime, job_id, JobState.SUCCEEDED, JobState.FAILED)
        assert record.state is JobState.SUCCEEDED, record.error
    assert wait_for_state(runtime, failing, JobState.SUCCEEDED, JobState.FAILED).state is JobState.FAILED

    # Then one scrape of the worker shows what both processes did
    samples = scrape_until(
        url,
        lambda found: value(found, "preview_stage_duration_seconds_count", stage="finalize") >= 6,
        what="six finalize stages in the scrape",
    )
    records, _ = parse_lines(worker.output)
    assert len({record["process"] for record in records if record.get("stage") == "render"}) == 2, "one process did all"
    assert value(samples, "preview_jobs_completed_total", outcome="succeeded") == 6
    assert value(samples, "preview_jobs_completed_total", outcome="failed") == 1
    assert value(samples, "preview_jobs_dead_lettered_total") == 1
    assert value(samples, "preview_job_duration_seconds_count") == 6
    assert {stage: value(samples, "preview_stage_duration_seconds_count", stage=stage) for stage in STAGES} == {
        "render": 7,
        "hash": 6,
        "finalize": 6,
    }
    assert sum(value(samples, "preview_job_retries_total", stage=stage) for stage in STAGES) == 0
    assert {role: value(samples, "preview_artifact_bytes_count", role=role) for role in ROLES} == dict.fromkeys(ROLES, 6)
    assert value(samples, "preview_segment_cache_total", result="miss") == sum(n % 3 + 1 for n in range(6))
    assert value(samples, "preview_renders_in_progress") == 0
    assert value(samples, "preview_queue_depth") == 0  # read from the job store at the scrape


@pytest.mark.slow
def test_a_single_process_worker_serves_its_own_metrics(
    redis_runtime: Callable[..., Runtime], worker_processes: Callable[..., WorkerProcess]
) -> None:
    runtime = redis_runtime()
    port = free_port()
    worker_processes(runtime, PREVIEW_METRICS_PORT=str(port))  # no PROMETHEUS_MULTIPROC_DIR

    job_id = submit_preview(chapter_request()).record.job_id
    assert wait_for_state(runtime, job_id, JobState.SUCCEEDED, JobState.FAILED).state is JobState.SUCCEEDED

    samples = scrape_until(
        f"http://127.0.0.1:{port}/metrics",
        lambda found: value(found, "preview_stage_duration_seconds_count", stage="finalize") == 1,
        what="the finalize stage in the scrape",
    )
    assert value(samples, "preview_jobs_completed_total", outcome="succeeded") == 1
    assert value(samples, "process_cpu_seconds_total") > 0  # the process's own default registry


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"PREVIEW_METRICS_PORT": "http"}, "PREVIEW_METRICS_PORT: must be an integer"),
        ({"PREVIEW_METRICS_PORT": "-1"}, "PREVIEW_METRICS_PORT: must be at least 0"),
        ({"PREVIEW_METRICS_PORT": "70000"}, "PREVIEW_METRICS_PORT: must be a TCP port"),
        ({"PREVIEW_METRICS_HOST": " "}, "PREVIEW_METRICS_HOST: must be an address"),
    ],
)
def test_invalid_metrics_settings_name_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({"PREVIEW_BROKER_URL": "stub://", **environ})


def test_metrics_settings_defaults_and_zero() -> None:
    assert (Settings.from_env({}).metrics_port, Settings.from_env({}).metrics_host) == (9191, "127.0.0.1")
    assert Settings.from_env({"PREVIEW_METRICS_PORT": "0", "PREVIEW_METRICS_HOST": "0.0.0.0"}).metrics_port == 0


@pytest.mark.slow
def test_api_and_worker_scrapes_agree_with_what_happened(
    redis_runtime: Callable[..., Runtime], worker_processes: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    # Given `preview-worker serve` (the API with /metrics) and a worker serving its own /metrics
    runtime = redis_runtime()
    worker_port = free_port()
    worker_processes(runtime, PREVIEW_METRICS_PORT=str(worker_port))
    with api_server(runtime, tmp_path / "api.log") as base:
        # When four jobs are accepted (one of them submitted twice) and three submissions are refused
        with httpx.Client(base_url=f"{base}/api/preview", timeout=30) as client:
            bodies = [chapter_request(steps=n + 1, jobId=str(uuid.uuid4())) for n in range(4)]
            assert [client.post("/", json=body).status_code for body in bodies] == [202] * 4
            assert client.post("/", json=bodies[0]).status_code == 200  # the same job again: not counted twice
            assert client.post("/", json={"projectId": "p"}).status_code == 422
            assert client.post("/", json=chapter_request(steps=0)).status_code == 422
            assert client.post("/", content=b"steps", headers={"content-type": "text/plain"}).status_code == 415
            for body in bodies:
                wait_until(
                    lambda job_id=body["jobId"]: client.get(f"/{job_id}/status").json()["state"] == "succeeded",
                    timeout_s=60,
                    what=f"job {body['jobId']} to succeed",
                )

        # Then the API's scrape counts the submissions and refusals, the worker's the outcomes
        api_samples = scrape(f"{base}/metrics")
        assert value(api_samples, "preview_jobs_submitted_total") == 4
        assert value(api_samples, "preview_jobs_rejected_total", reason="invalid") == 2
        assert value(api_samples, "preview_jobs_rejected_total", reason="not_json") == 1
        assert value(api_samples, "preview_jobs_completed_total", outcome="succeeded") == 0  # the API renders nothing
        worker_samples = scrape_until(
            f"http://127.0.0.1:{worker_port}/metrics",
            lambda found: value(found, "preview_stage_duration_seconds_count", stage="finalize") == 4,
            what="four finalize stages in the worker's scrape",
        )
        assert value(worker_samples, "preview_jobs_completed_total", outcome="succeeded") == 4
        assert value(worker_samples, "preview_job_duration_seconds_count") == 4
        assert value(worker_samples, "preview_jobs_submitted_total") == 0  # submitted through the API only
