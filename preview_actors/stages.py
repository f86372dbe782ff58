"""What each stage of the pipeline does, given the runtime and a job id.

Every stage is idempotent: a redelivered message finds a finished job and
does nothing, a render attempt writes only into its own folder, artifacts are
stored by content hash (the same bytes make one file), and container.json is
rewritten identically.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any, Iterator

from . import logs, metrics
from .assets import resolve_assets
from .container import build_container, write_container
from .errors import JobCancelled, PermanentJobError
from .jobfiles import JobFiles
from .model import JobRequest
from .renderer import RenderStopped, run_renderer
from .runtime import Runtime
from .storage import StoredArtifact, content_type_of, sha256_of_file
from .store import JobRecord, JobState

logger = logging.getLogger(__name__)

#: Progress (0..1) at the start of each stage; rendering fills the gap to hashing.
PROGRESS_RENDER_START = 0.05
PROGRESS_HASH_START = 0.90
PROGRESS_FINALIZE_START = 0.95
#: Least interval between progress writes to the store, seconds.
PROGRESS_WRITE_INTERVAL_S = 0.25

#: Renderer output file → artifact role; the video is absent on a dry run.
OUTPUT_ROLES = {"video.mp4": "video", "poster.jpg": "poster", "plan.json": "plan", "report.json": "report"}

SPEC_VERSION = 1


def _enter(runtime: Runtime, job_id: str, state: JobState, progress: float) -> JobRecord | None:
    """The job moved to ``state``, or None when it is finished (a redelivery) and the stage
    should do nothing — one store round trip (the store leaves a finished job alone)."""
    return _unfinished(job_id, runtime.store.update(job_id, state=state, progress=progress))


def _unfinished(job_id: str, record: JobRecord | None) -> JobRecord | None:
    if record is None:
        raise PermanentJobError(f"no job {job_id} in the job store")
    if record.finished:
        logger.info("Job is %s already; nothing to do.", record.state)
        return None
    return record


def render(runtime: Runtime, job_id: str) -> dict[str, Any]:
    with runtime.render_slots.hold():  # raises RenderSlotBusy: the message waits without a retry
        # One store round trip: count the attempt and enter `rendering`, unless the job is finished.
        started = runtime.store.begin_attempt(job_id, state=JobState.RENDERING, progress=PROGRESS_RENDER_START)
        record = _unfinished(job_id, started)
        if record is None:
            return {"skipped": True}
        return _render_attempt(runtime, record)


@contextlib.contextmanager
def _removed_on_failure(work_dir: Path) -> Iterator[None]:
    """A failed attempt's scratch folder goes (its log stays): debris must not fill the disk."""
    try:
        yield
    except BaseException:
        shutil.rmtree(work_dir, ignore_errors=True)
        raise


def _render_attempt(runtime: Runtime, record: JobRecord) -> dict[str, Any]:
    settings = runtime.settings
    job_id = record.job_id
    attempt = record.attempts
    files = JobFiles(settings.data_dir, job_id)
    request = JobRequest.from_json(record.request)
    work_dir = files.attempt(attempt)
    out_dir = work_dir / "out"
    with logs.bound(attempt=attempt), _removed_on_failure(work_dir):
        out_dir.mkdir(parents=True, exist_ok=True)
        assets = resolve_assets(
            [{"id": a.id, "type": a.type, "uri": a.uri, "sha256": a.sha256} for a in request.preview_request.assets],
            asset_root=settings.asset_root,
            allowed_hosts=settings.asset_allowed_hosts,
            work_dir=work_dir / "assets",
        )
        spec_path = work_dir / "spec.json"
        cache_dir = settings.data_dir / "cache" / "segments"
        # Compact: json's C encoder does no indenting, and the file goes with the attempt's folder.
        spec_path.write_text(json.dumps(build_spec(request, job_id, assets, cache_dir)))
        command = [*settings.renderer_command, str(spec_path), str(out_dir)]
        if request.dry_run:
            command.append("--dry-run")
        log_path = files.log(attempt)
        _write_log_header(log_path, record, attempt, command)
        logger.info("Rendering attempt %d with %s.", attempt, settings.renderer_name)
        with metrics.RENDERS_IN_PROGRESS.track_inprogress():
            try:
                result = run_renderer(
                    command,
                    log_path=log_path,
                    timeout_s=settings.render_timeout_s,
                    on_progress=_progress_writer(runtime, job_id),
                    should_stop=lambda: _cancelled(runtime, job_id),
                    # The built-in renderers set their own parent-death signal: start them with vfork.
                    die_with_parent=settings.renderer_name == "custom",
                )
            except RenderStopped:
                logger.info("Job cancelled while rendering; renderer killed.")
                raise JobCancelled(f"job {job_id} was cancelled") from None
        logger.info("Renderer finished in %.2fs.", result.seconds)
    return {"attempt": attempt, "outDir": files.relative(out_dir), "dryRun": request.dry_run}


def build_spec(request: JobRequest, job_id: str, assets: dict[str, Any], cache_dir: Path | None) -> dict[str, Any]:
    """The renderer's SPEC.json (see :mod:`renderers.protocol`); ``assets`` from :func:`resolve_assets`."""
    preview = request.preview_request
    output = preview.output
    audio = preview.audio
    return {
        "specVersion": SPEC_VERSION,
        "jobId": job_id,
        "chapterId": preview.chapter_id,
        "output": {"width": output.width, "height": output.height, "fps": output.fps},
        "steps": [
            {
                "id": step.id,
                "durationMs": step.duration_ms,
                "title": step.title,
                "text": step.text,
                "asset": step.asset,
                "background": step.background,
            }
            for step in preview.steps
        ],
        "assets": assets,
        "audio": None
        if audio is None
        else {"asset": audio.asset, "volume": audio.volume, "fadeInMs": audio.fade_in_ms, "fadeOutMs": audio.fade_out_ms},
        "cacheDir": None if cache_dir is None else str(cache_dir),
    }


def _cancelled(runtime: Runtime, job_id: str) -> bool:
    record = runtime.store.get(job_id)
    return record is None or record.state is JobState.CANCELLED


def _write_log_header(log_path: Path, record: JobRecord, attempt: int, command: list[str]) -> None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    header = {
        "jobId": record.job_id,
        "requestId": record.request_id,
        "projectId": record.project_id,
        "stage": "render",
        "attempt": attempt,
        "command": command,
        "startedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"# {json.dumps(header)}\n")


def _progress_writer(runtime: Runtime, job_id: str) -> Any:
    """A callback writing the renderer's progress to the store, at most every PROGRESS_WRITE_INTERVAL_S.

    The state change to ``rendering`` counts as the first write, and the
    change to ``hashing`` (progress PROGRESS_HASH_START) follows the end of the
    render, so a render shorter than the interval costs no progress write.
    """
    last_write = time.monotonic()

    def write(fraction: float) -> None:
        nonlocal last_write
        now = time.monotonic()
        if now - last_write < PROGRESS_WRITE_INTERVAL_S:
            return
        last_write = now
        progress = PROGRESS_RENDER_START + (PROGRESS_HASH_START - PROGRESS_RENDER_START) * fraction
        runtime.store.update(job_id, progress=progress)

    return write


def hash_artifacts(runtime: Runtime, job_id: str, rendered: dict[str, Any]) -> dict[str, Any]:
    if rendered.get("skipped") or _enter(runtime, job_id, JobState.HASHING, PROGRESS_HASH_START) is None:
        return {"skipped": True}
    data_dir = runtime.settings.data_dir
    out_dir = data_dir / rendered["outDir"]
    artifacts = []
    for name, role in OUTPUT_ROLES.items():
        path = out_dir / name
        if not path.is_file():
            if role == "video" and rendered.get("dryRun"):
                continue
            raise PermanentJobError(f"the renderer exited 0 but wrote no {name}")
        artifacts.append({"role": role, **runtime.artifacts.add_file(path).to_json()})
    log_path = JobFiles(data_dir, job_id).log(rendered["attempt"])
    if log_path.is_file():
        sha256, size = sha256_of_file(log_path)
        artifacts.append({"role": "log", **StoredArtifact(sha256, size, log_path.relative_to(data_dir).as_posix(), content_type_of(log_path)).to_json()})
    for artifact in artifacts:
        metrics.ARTIFACT_BYTES.labels(role=artifact["role"]).observe(artifact["size"])
    logger.info("Stored %d artifacts, %d bytes.", len(artifacts), sum(artifact["size"] for artifact in artifacts))
    return {"attempt": rendered["attempt"], "dryRun": rendered.get("dryRun", False), "artifacts": artifacts}


def finalize(runtime: Runtime, job_id: str, hashed: dict[str, Any]) -> dict[str, Any]:
    if hashed.get("skipped"):
        return {"skipped": True}
    record = _enter(runtime, job_id, JobState.FINALIZING, PROGRESS_FINALIZE_START)
    if record is None:
        return {"skipped": True}
    files = JobFiles(runtime.settings.data_dir, job_id)
    request = JobRequest.from_json(record.request)
    stored = [
        (entry["role"], StoredArtifact(entry["sha256"], entry["size"], entry["path"], entry["contentType"]))
        for entry in hashed["artifacts"]
    ]
    report = _read_report(runtime.settings.data_dir, hashed["artifacts"])
    container = build_container(
        job_id=job_id,
        project_id=record.project_id,
        chapter_id=request.preview_request.chapter_id,
        request_id=record.request_id,
        request_sha256=record.content_sha256,
        dry_run=request.dry_run,
        renderer={
            "name": report.get("renderer", runtime.settings.renderer_name),
            "version": report.get("version", "unknown"),
        },
        artifacts=stored,
    )
    container_path = write_container(files.root, container)
    summary = {role: artifact.to_json() for role, artifact in stored if role in ("video", "poster")}
    summary["container"] = {"path": files.relative(container_path)}
    shutil.rmtree(files.attempts, ignore_errors=True)
    final = runtime.store.update(job_id, state=JobState.SUCCEEDED, progress=1.0, artifact=summary, error=None)
    if final is None or final.state is not JobState.SUCCEEDED:  # cancelled meanwhile: no artifact
        container_path.unlink(missing_ok=True)
        logger.info("Job was %s before it could finish; its container is removed.", final.state if final else "deleted")
        return {"skipped": True}
    logger.info("Job succeeded.")
    _count_success(final, report)
    return {"container": files.relative(container_path)}


def _count_success(record: JobRecord, report: dict[str, Any]) -> None:
    """Metrics of a job that just succeeded: its duration since submission, the renderer's segment cache."""
    metrics.JOBS_COMPLETED.labels(outcome="succeeded").inc()
    metrics.JOB_DURATION.observe(max(0.0, time.time() - record.created_at))
    segments = report.get("segments")
    for segment in segments if isinstance(segments, list) else ():
        if isinstance(segment, dict) and isinstance(segment.get("reused"), bool):
            metrics.SEGMENT_CACHE.labels(result="hit" if segment["reused"] else "miss").inc()


def _read_report(data_dir: Path, artifacts: list[dict[str, Any]]) -> dict[str, Any]:
    for entry in artifacts:
        if entry["role"] == "report":
            try:
                with open(data_dir / entry["path"], encoding="utf-8") as file:
                    report = json.load(file)
                return report if isinstance(report, dict) else {}
            except (OSError, ValueError):
                return {}
    return {}


