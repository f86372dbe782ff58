"""What each stage of the pipeline does, given the runtime and a job id.

Every stage is idempotent: a redelivered message finds a finished job and
does nothing, a render attempt writes only into its own folder, artifacts are
stored by content hash (the same bytes make one file), and container.json is
rewritten identically.

The render stage runs once at a time per job (the job's execution lease, see
:mod:`.execution`), starts at most ``PREVIEW_MAX_RETRIES + 1`` attempts
(counted in the job store as they start, so attempts whose worker died count
too; a graceful hand-back on shutdown does not), and moves the job to
``hashing`` when its render is done, so a late copy of its message renders
nothing. Status writes wait for a job store that is briefly away
(:func:`~.store.patience.patiently`) instead of failing the render; progress
writes are skipped meanwhile.

The renderer's ``report.json`` is read once, when the renderer has exited 0
(:mod:`.render_report`): its warnings are recorded on the job in the same
write that moves it to ``hashing`` (so the status shows them from then on,
and a new attempt starts without them) and counted in
``preview_render_warnings_total``; who rendered and what the segment cache
did travel on to finalize in the ``report`` of the stage messages.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dramatiq.middleware import Shutdown

from . import execution, logs, metrics
from .assets import resolve_assets
from .concurrency import RenderSlotBusy
from .container import build_container, write_container
from .errors import BrokerUnavailableError, JobCancelled, PermanentJobError
from .execution import ExecutionLease, JobRenderingElsewhere
from .jobfiles import JobFiles
from .render_report import RenderReport, RenderWarning, read_report
from .renderer import RenderStopped, run_renderer
from .request import JobRequest
from .runtime import Runtime
from .storage import StoredArtifact, content_type_of, sha256_of_file
from .store import RENDERED_STATES, AttemptsExhausted, JobRecord, JobState
from .store.patience import patiently
from .timestamps import iso_utc

logger = logging.getLogger(__name__)

#: Progress (0..1) at the start of each stage; rendering fills the gap to hashing.
PROGRESS_RENDER_START = 0.05
PROGRESS_HASH_START = 0.90
PROGRESS_FINALIZE_START = 0.95
#: Least interval between progress writes to the store, seconds.
PROGRESS_WRITE_INTERVAL_S = 0.25
#: Least interval between progress writes while the store is unreachable, seconds.
PROGRESS_OUTAGE_INTERVAL_S = 2.0
#: How long handing an attempt back waits for an unreachable store (the worker may be stopping), seconds.
HAND_BACK_PATIENCE_S = 5.0

#: Renderer output file → artifact role; the video is absent on a dry run.
OUTPUT_ROLES = {"video.mp4": "video", "poster.jpg": "poster", "plan.json": "plan", "report.json": "report"}

SPEC_VERSION = 1


def _enter(runtime: Runtime, job_id: str, state: JobState, progress: float) -> JobRecord | None:
    """The job moved to ``state``, or None when it is finished (a redelivery) and the stage
    should do nothing — one store round trip (the store leaves a finished job alone)."""
    record = patiently(
        f"moving job {job_id} to {state}", lambda: runtime.store.update(job_id, state=state, progress=progress)
    )
    return _unfinished(job_id, record)


def _unfinished(job_id: str, record: JobRecord | None) -> JobRecord | None:
    if record is None:
        raise PermanentJobError(f"no job {job_id} in the job store")
    if record.finished:
        logger.info("Job is %s already; nothing to do.", record.state)
        return None
    return record


def render(runtime: Runtime, job_id: str) -> dict[str, Any]:
    store = runtime.store
    max_attempts = runtime.settings.max_retries + 1
    # Each raises a RenderSlotBusy when taken elsewhere: the message waits, counting no retry.
    with execution.held(store, job_id) as lease, _render_slot(runtime):
        try:
            # One store round trip: count the attempt and enter `rendering`, unless the job is
            # finished or rendered already, or has started all the attempts it may.
            started = patiently(
                f"starting a render attempt of job {job_id}",
                lambda: store.begin_attempt(
                    job_id,
                    max_attempts=max_attempts,
                    state=JobState.RENDERING,
                    progress=PROGRESS_RENDER_START,
                    warnings=(),
                ),
            )
        except AttemptsExhausted as exhausted:
            raise PermanentJobError(
                f"{exhausted}: each attempt's worker died or lost the job (the OOM killer, a crash in a codec?); "
                "replay it once the cause is fixed"
            ) from None
        record = _unfinished(job_id, started)
        if record is None:
            return {"skipped": True}
        if record.state in RENDERED_STATES:
            logger.info("Job's render is done already (it is %s); nothing to do.", record.state)
            return {"skipped": True}
        try:
            outcome = _render_attempt(runtime, record, lease)
        except (Shutdown, JobRenderingElsewhere):
            _hand_back(runtime, record)
            raise
        if outcome is None:
            return {"skipped": True}
        rendered, report = outcome
        # Still under the lease: from here a copy of this message finds the render done.
        recorded = patiently(
            f"recording the end of job {job_id}'s render",
            lambda: store.update(
                job_id, state=JobState.HASHING, progress=PROGRESS_HASH_START, warnings=report.warnings
            ),
        )
        if recorded is not None and recorded.state is JobState.HASHING:
            _count_warnings(report.warnings)
        return {**rendered, "report": report.summary()}


def _count_warnings(warnings: tuple[RenderWarning, ...]) -> None:
    """Count a job's warnings as they are recorded: the render stage moves a job to hashing once."""
    for warning in warnings:
        metrics.RENDER_WARNINGS.labels(kind=warning.code).inc()
    if warnings:
        logger.info("The renderer reported %d warnings: %s.", len(warnings), ", ".join(sorted({w.code for w in warnings})))


@contextlib.contextmanager
def _render_slot(runtime: Runtime) -> Iterator[None]:
    """Hold a render slot for the block; raise :class:`RenderSlotBusy` when none is free.

    Like ``runtime.render_slots.hold()``, but riding out a store that is briefly away.
    """
    slot = patiently("taking a render slot", runtime.render_slots.try_acquire)
    if slot is None:
        raise RenderSlotBusy(f"all {runtime.render_slots.limit} render slots are taken")
    try:
        yield
    finally:
        slot.release()


def _hand_back(runtime: Runtime, record: JobRecord) -> None:
    """This attempt ends unfinished through no fault of the job (a graceful shutdown, a lost lease):
    it is not charged to the job's attempt budget."""
    job_id = record.job_id
    try:
        patiently(
            f"handing job {job_id}'s attempt back",
            lambda: runtime.store.update(job_id, attempt_base=record.attempt_base + 1),
            patience_s=HAND_BACK_PATIENCE_S,
        )
    except BrokerUnavailableError as error:
        logger.warning("Could not hand the attempt back; it counts against the job's retries: %s", error)


@contextlib.contextmanager
def _removed_on_failure(work_dir: Path) -> Iterator[None]:
    """A failed attempt's scratch folder goes (its log stays): debris must not fill the disk."""
    try:
        yield
    except BaseException:
        shutil.rmtree(work_dir, ignore_errors=True)
        raise


def _render_attempt(
    runtime: Runtime, record: JobRecord, lease: ExecutionLease
) -> tuple[dict[str, Any], RenderReport] | None:
    """Run the renderer for ``record``'s attempt: the hash stage's input and the renderer's
    report; None when the job ended elsewhere meanwhile.

    Raises :class:`JobCancelled` when the job was cancelled, :class:`JobRenderingElsewhere`
    when another delivery took the lease, and what :func:`run_renderer` raises.
    """
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
                    should_stop=lambda: _should_stop(runtime, job_id, lease),
                    # The built-in renderers set their own parent-death signal: start them with vfork.
                    die_with_parent=settings.renderer_name == "custom",
                )
            except RenderStopped:
                if lease.lost:
                    raise JobRenderingElsewhere(job_id, "lost its execution lease; renderer killed") from None
                ended = patiently(f"reading job {job_id}", lambda: runtime.store.get(job_id))
                if ended is None or ended.state is JobState.CANCELLED:
                    logger.info("Job cancelled while rendering; renderer killed.")
                    raise JobCancelled(f"job {job_id} was cancelled") from None
                logger.info("Job ended (%s) while rendering; renderer killed, nothing to do.", ended.state)
                return None
        logger.info("Renderer finished in %.2fs.", result.seconds)
        report = read_report(out_dir / "report.json")
    return {"attempt": attempt, "outDir": files.relative(out_dir), "dryRun": request.dry_run}, report


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


def _should_stop(runtime: Runtime, job_id: str, lease: ExecutionLease) -> bool:
    """Whether a running render must stop: its lease was lost, or its job ended (cancelled, or finished
    by another delivery). A store that cannot be reached stops nothing."""
    if lease.lost:
        return True
    try:
        record = runtime.store.get(job_id)
    except BrokerUnavailableError:
        return False
    return record is None or record.finished


def _write_log_header(log_path: Path, record: JobRecord, attempt: int, command: list[str]) -> None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    header = {
        "jobId": record.job_id,
        "requestId": record.request_id,
        "projectId": record.project_id,
        "stage": "render",
        "attempt": attempt,
        "command": command,
        "startedAt": iso_utc(),
    }
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"# {json.dumps(header)}\n")


def _progress_writer(runtime: Runtime, job_id: str) -> Any:
    """A callback writing the renderer's progress to the store, at most every PROGRESS_WRITE_INTERVAL_S.

    The state change to ``rendering`` counts as the first write, and the
    change to ``hashing`` (progress PROGRESS_HASH_START) follows the end of the
    render, so a render shorter than the interval costs no progress write.
    While the store cannot be reached, progress is not recorded (the render
    goes on; a later write catches up) and is tried every
    PROGRESS_OUTAGE_INTERVAL_S.
    """
    next_write = time.monotonic() + PROGRESS_WRITE_INTERVAL_S
    away = False

    def write(fraction: float) -> None:
        nonlocal next_write, away
        now = time.monotonic()
        if now < next_write:
            return
        progress = PROGRESS_RENDER_START + (PROGRESS_HASH_START - PROGRESS_RENDER_START) * fraction
        try:
            runtime.store.update(job_id, progress=progress)
        except BrokerUnavailableError as error:
            next_write = time.monotonic() + PROGRESS_OUTAGE_INTERVAL_S
            if not away:
                away = True
                logger.warning("Job store unreachable; progress is not recorded until it is back: %s", error)
            return
        next_write = now + PROGRESS_WRITE_INTERVAL_S
        if away:
            away = False
            logger.info("Job store reachable again; recording progress.")

    return write


def hash_artifacts(runtime: Runtime, job_id: str, rendered: dict[str, Any]) -> dict[str, Any]:
    if rendered.get("skipped") or _enter(runtime, job_id, JobState.HASHING, PROGRESS_HASH_START) is None:
        return {"skipped": True}
    data_dir = runtime.settings.data_dir
    out_dir = data_dir / rendered["outDir"]
    artifacts: list[dict[str, Any]] = []
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
        stored = StoredArtifact(sha256, size, log_path.relative_to(data_dir).as_posix(), content_type_of(log_path))
        artifacts.append({"role": "log", **stored.to_json()})
    for artifact in artifacts:
        metrics.ARTIFACT_BYTES.labels(role=artifact["role"]).observe(artifact["size"])
    logger.info("Stored %d artifacts, %d bytes.", len(artifacts), sum(artifact["size"] for artifact in artifacts))
    hashed = {"attempt": rendered["attempt"], "dryRun": rendered.get("dryRun", False), "artifacts": artifacts}
    if "report" in rendered:
        hashed["report"] = rendered["report"]
    return hashed


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
    report = _report_of(runtime.settings.data_dir, hashed)
    container = build_container(
        job_id=job_id,
        project_id=record.project_id,
        chapter_id=request.preview_request.chapter_id,
        request_id=record.request_id,
        request_sha256=record.content_sha256,
        dry_run=request.dry_run,
        renderer={
            "name": report.renderer_name or runtime.settings.renderer_name,
            "version": report.renderer_version or "unknown",
        },
        artifacts=stored,
    )
    container_path = write_container(files.root, container)
    summary = {role: artifact.to_json() for role, artifact in stored if role in ("video", "poster")}
    summary["container"] = {"path": files.relative(container_path)}
    shutil.rmtree(files.attempts, ignore_errors=True)
    final = patiently(
        f"recording job {job_id}'s success",
        lambda: runtime.store.update(job_id, state=JobState.SUCCEEDED, progress=1.0, artifact=summary, error=None),
    )
    if final is None or final.state is not JobState.SUCCEEDED:  # cancelled meanwhile: no artifact
        container_path.unlink(missing_ok=True)
        logger.info("Job was %s before it could finish; its container is removed.", final.state if final else "deleted")
        return {"skipped": True}
    logger.info("Job succeeded.")
    _count_success(final, report)
    return {"container": files.relative(container_path)}


def _count_success(record: JobRecord, report: RenderReport) -> None:
    """Metrics of a job that just succeeded: its duration since submission, the renderer's segment cache."""
    metrics.JOBS_COMPLETED.labels(outcome="succeeded").inc()
    metrics.JOB_DURATION.observe(max(0.0, time.time() - record.created_at))
    if report.segments_reused:
        metrics.SEGMENT_CACHE.labels(result="hit").inc(report.segments_reused)
    if report.segments_encoded:
        metrics.SEGMENT_CACHE.labels(result="miss").inc(report.segments_encoded)


def _report_of(data_dir: Path, hashed: dict[str, Any]) -> RenderReport:
    """The render's report as the render stage summed it up; read from the stored report.json when the
    message has no summary (the reconciliation re-enqueues a job without one, as an earlier release did)."""
    summary = hashed.get("report")
    if isinstance(summary, dict):
        try:
            return RenderReport.from_summary(summary)
        except ValueError as error:
            logger.warning("Reading report.json again: %s", error)
    for entry in hashed["artifacts"]:
        if entry["role"] == "report":
            return read_report(data_dir / entry["path"])
    return RenderReport()


