"""The ``preview-worker`` command line.

``render`` runs the whole pipeline in this process on the embedded defaults
(a SQLite broker and job store in DATA_DIR), with a progress bar. ``serve``
runs the API server (``preview_api.asgi:app``). The worker itself is
``dramatiq preview_actors``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from preview_worker import admin, smoke

#: Seconds between status polls while waiting for a job.
POLL_INTERVAL_S = 0.1
#: Worker threads of the in-process worker (one renders while another finishes).
RENDER_THREADS = 2
BAR_WIDTH = 30
#: Where ``serve`` listens by default.
SERVE_HOST = "127.0.0.1"
SERVE_PORT = 8000


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        _import_configured()
        return int(args.run(args))
    except KeyboardInterrupt:
        print("\npreview-worker: interrupted", file=sys.stderr)
        return 130


def _import_configured() -> None:
    """Import preview_actors, which sets up from the environment; a bad setting exits 2 naming it."""
    try:
        importlib.import_module("preview_actors")
    except Exception as error:
        errors = sys.modules.get("preview_actors.errors")
        if errors is not None and isinstance(error, errors.ConfigError):
            print(f"preview-worker: configuration error: {error}", file=sys.stderr)
            raise SystemExit(2) from None
        raise


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="preview-worker", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    render = commands.add_parser(
        "render",
        help="render a chapter in this process on the embedded SQLite defaults",
        description="Render CHAPTER.json (a job request as POSTed, or a bare previewRequest) "
        "through render → hash → finalize in this process, on a SQLite broker in DATA_DIR.",
    )
    render.add_argument("chapter", type=Path, metavar="CHAPTER.json")
    render.add_argument("--dry-run", action="store_true", help="validate and plan without encoding video")
    render.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    render.add_argument(
        "--asset-root",
        type=Path,
        help="folder relative asset URIs are resolved in (default: PREVIEW_ASSET_ROOT, else CHAPTER.json's folder)",
    )
    render.add_argument("--timeout", type=float, default=3600.0, metavar="SECONDS", help="give up after this long")
    render.set_defaults(run=_render)
    serve = commands.add_parser(
        "serve",
        help="run the API server: the preview API at /api/preview and Prometheus /metrics",
        description="Serve preview_api.asgi:app with uvicorn on the runtime configured from the environment.",
    )
    serve.add_argument("--host", default=SERVE_HOST, help=f"address to listen on (default {SERVE_HOST})")
    serve.add_argument("--port", type=_port, default=SERVE_PORT, help=f"port to listen on (default {SERVE_PORT})")
    serve.set_defaults(run=_serve)
    admin.add_commands(commands)
    smoke.add_command(commands)
    reconcile = commands.add_parser(
        "reconcile",
        help="re-enqueue unfinished jobs whose message is on no queue (one pass)",
        description="One reconciliation pass, as workers run every PREVIEW_RECONCILE_INTERVAL_S: unfinished jobs "
        "unchanged for PREVIEW_RECONCILE_GRACE_S whose message is on no queue are re-enqueued (or failed, naming why).",
    )
    reconcile.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    reconcile.set_defaults(run=_reconcile)
    return parser


def load_chapter(path: Path) -> dict[str, Any]:
    """Read CHAPTER.json; a bare previewRequest is wrapped in a job request."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SystemExit(f"preview-worker: cannot read {path}: {error.strerror or error}") from None
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except ValueError as error:
        raise SystemExit(f"preview-worker: {path} is not valid JSON: {error}") from None
    if isinstance(data, dict) and "previewRequest" not in data and "steps" in data:
        data = {"projectId": "local", "previewRequest": data}
    if not isinstance(data, dict):
        raise SystemExit(f"preview-worker: {path} must hold a JSON object")
    return data


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid JSON number")


def _render(args: argparse.Namespace) -> int:
    import dramatiq

    from preview_actors import logs, setup
    from preview_actors.errors import PreviewError, ValidationError
    from preview_actors.jobfiles import JobFiles
    from preview_actors.settings import Settings
    from preview_actors.store import JobState
    from preview_actors.submit import submit_preview

    body = load_chapter(args.chapter)
    if args.dry_run:
        body["dryRun"] = True
    settings = Settings.from_env()
    queue_url = f"sqlite:///{settings.data_dir / 'queue.db'}"
    asset_root = args.asset_root or (
        settings.asset_root if os.environ.get("PREVIEW_ASSET_ROOT") else args.chapter.resolve().parent
    )
    settings = attrs.evolve(settings, broker_url=queue_url, store_url=queue_url, asset_root=asset_root.resolve())
    runtime = setup(settings)
    logs.install(settings.log_format, level=logging.WARNING)  # warnings only, redacted, beside the progress bar
    worker = dramatiq.Worker(runtime.broker, worker_threads=RENDER_THREADS, worker_timeout=100)
    worker.start()
    try:
        try:
            submission = submit_preview(body)
        except ValidationError as error:
            for problem in error.errors:
                print(f"preview-worker: invalid request: {problem}", file=sys.stderr)
            return 2
        except PreviewError as error:
            print(f"preview-worker: {error}", file=sys.stderr)
            return 1
        job_id = submission.record.job_id
        bar = _ProgressBar(enabled=not args.json and sys.stderr.isatty())
        deadline = time.monotonic() + args.timeout
        while True:
            record = runtime.store.get(job_id)
            if record is None:  # pragma: no cover - the job was just created
                raise SystemExit(f"preview-worker: job {job_id} vanished from the store")
            bar.show(record.progress, record.state.value)
            if record.finished:
                break
            if time.monotonic() > deadline:
                bar.done()
                print(f"preview-worker: job {job_id} not finished after {args.timeout:g}s", file=sys.stderr)
                return 1
            time.sleep(POLL_INTERVAL_S)
        bar.done()
    finally:
        worker.stop()
        runtime.close()
    files = JobFiles(settings.data_dir, job_id)
    artifact = record.artifact or {}
    result = {
        "jobId": job_id,
        "state": record.state.value,
        "video": str(settings.data_dir / artifact["video"]["path"]) if "video" in artifact else None,
        "poster": str(settings.data_dir / artifact["poster"]["path"]) if "poster" in artifact else None,
        "container": str(files.container) if record.state is JobState.SUCCEEDED else None,
        "error": record.error,
    }
    if args.json:
        print(json.dumps(result))
    elif record.state is JobState.SUCCEEDED:
        print(f"job {job_id} succeeded")
        if result["video"]:
            print(f"video:     {result['video']}")
        print(f"poster:    {result['poster']}")
        print(f"container: {result['container']}")
    else:
        message = (record.error or {}).get("message", "no error recorded")
        print(f"job {job_id} {record.state.value}: {message}", file=sys.stderr)
    if record.state is JobState.SUCCEEDED:
        return 0
    return 2 if (record.error or {}).get("code") == "bad_input" else 1  # 2: the chapter or an asset is bad


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0..65535, not {port}")
    return port


def _reconcile(args: argparse.Namespace) -> int:
    """One reconciliation pass; exits 1 when another process is running one or a server is away."""
    from preview_actors import current, logs
    from preview_actors.errors import BrokerUnavailableError
    from preview_actors.reconcile import Reconciler

    runtime = current()
    logs.install(runtime.settings.log_format, level=logging.WARNING)  # a line per job acted on, redacted
    try:
        outcome = Reconciler(runtime.broker, runtime.store, runtime.settings).run_once()
    except BrokerUnavailableError as error:
        print(f"preview-worker: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(outcome.to_json()))
    elif outcome.ran:
        for job_id in outcome.requeued:
            print(f"requeued {job_id}")
        for job_id in outcome.failed:
            print(f"failed {job_id}")
        print(
            f"{outcome.checked} unfinished jobs unchanged for {runtime.settings.reconcile_grace_s:g}s: "
            f"{len(outcome.requeued)} requeued, {len(outcome.failed)} failed, {len(outcome.present)} with their message, "
            f"{len(outcome.unknown)} the broker cannot account for"
        )
    if not outcome.ran:
        print("preview-worker: another process is reconciling now; try again shortly", file=sys.stderr)
        return 1
    return 0


def _serve(args: argparse.Namespace) -> int:
    """uvicorn on ``preview_api.asgi:app``, logging in preview_actors' format with secrets redacted."""
    import uvicorn

    from preview_actors import current, logs

    logs.install(current().settings.log_format)
    # log_config=None: uvicorn's loggers propagate to the root handler set up just above.
    uvicorn.run("preview_api.asgi:app", host=args.host, port=args.port, log_config=None, proxy_headers=True)
    return 0


@attrs.define
class _ProgressBar:
    """A one-line progress bar on stderr (only when it is a terminal)."""

    enabled: bool
    _last: str = ""

    def show(self, progress: float, state: str) -> None:
        if not self.enabled:
            return
        filled = math.floor(progress * BAR_WIDTH)
        line = f"\r[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {progress * 100:5.1f}% {state:<11}"
        if line != self._last:
            sys.stderr.write(line)
            sys.stderr.flush()
            self._last = line

    def done(self) -> None:
        if self.enabled and self._last:
            sys.stderr.write("\n")
            sys.stderr.flush()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
