"""A fast, deterministic stand-in for the ffmpeg renderer, for pipeline tests.

It follows the renderer protocol without encoding anything: ``video.mp4`` holds
bytes derived from the spec (so equal specs give equal "videos"), the poster is
a fixed tiny JPEG. Its behaviour is steered by the environment:

- ``PREVIEW_MOCK_DELAY_MS``: total time to take, spread over the progress lines;
- ``PREVIEW_MOCK_EXIT_CODE``: exit with this code instead of succeeding;
- ``PREVIEW_MOCK_HANG``: when set to a true value, never finish;
- ``PREVIEW_MOCK_TRACE_FILE``: append "start PID T" / "end PID T" lines there,
  so tests can observe how many renders overlap.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from renderers import protocol

NAME = "mock"
VERSION = "1.0.0"

#: A 16x9 JPEG, the poster of every mock render.
POSTER_JPEG = base64.b64decode("/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERXRTc4UG1RV19iZ2hnPk1xeXBkeFxlZ2P/2wBDARESEhgVGC8aGi9jQjhCY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2P/wAARCAAJABADASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwDjaKKK1Mz/2Q==")

#: Progress lines printed over a render.
PROGRESS_STEPS = 4


def main(argv: list[str] | None = None) -> int:
    protocol.die_with_parent()
    spec_path, out_dir, dry_run = protocol.parse_argv(sys.argv[1:] if argv is None else argv)
    _trace("start")
    try:
        spec = protocol.load_spec(spec_path)
        _check_assets(spec)
    except protocol.BadInput as error:
        protocol.fail_bad_input(str(error))
    delay_s = _env_int("PREVIEW_MOCK_DELAY_MS", 0) / 1000
    for step in range(1, PROGRESS_STEPS + 1):
        if delay_s:
            time.sleep(delay_s / PROGRESS_STEPS)
        protocol.report_progress(step / PROGRESS_STEPS)
    if os.environ.get("PREVIEW_MOCK_HANG", "").lower() in ("1", "true", "yes"):
        print("mock renderer: hanging as asked", file=sys.stderr, flush=True)
        while True:
            time.sleep(3600)
    exit_code = _env_int("PREVIEW_MOCK_EXIT_CODE", 0)
    if exit_code:
        print(f"mock renderer: failing with exit code {exit_code} as asked", file=sys.stderr, flush=True)
        _trace("end")
        return exit_code
    _write_outputs(spec, out_dir, dry_run)
    _trace("end")
    return protocol.EXIT_OK


def _check_assets(spec: dict[str, Any]) -> None:
    for asset_id, asset in spec["assets"].items():
        path = Path(asset.get("path", ""))
        if not path.is_file():
            raise protocol.BadInput(f"asset {asset_id!r}: file {path} does not exist")


def _write_outputs(spec: dict[str, Any], out_dir: Path, dry_run: bool) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    timeline = []
    start_ms = 0
    for step in spec["steps"]:
        timeline.append({"step": step["id"], "startMs": start_ms, "durationMs": step["durationMs"]})
        start_ms += step["durationMs"]
    plan = {"renderer": NAME, "version": VERSION, "output": spec["output"], "timeline": timeline, "durationMs": start_ms}
    protocol.write_json_atomically(out_dir / protocol.PLAN_FILE, plan)
    (out_dir / protocol.POSTER_FILE).write_bytes(POSTER_JPEG)
    if not dry_run:
        identity = json.dumps({"output": spec["output"], "steps": spec["steps"], "audio": spec.get("audio")}, sort_keys=True)
        seed = hashlib.sha256(identity.encode()).digest()
        (out_dir / protocol.VIDEO_FILE).write_bytes(b"MOCKMP4\n" + identity.encode() + b"\n" + seed * 64)
    report = {
        "renderer": NAME,
        "version": VERSION,
        "dryRun": dry_run,
        "segments": [{"step": step["id"], "reused": False, "seconds": 0.0} for step in spec["steps"]],
        "timings": {},
    }
    protocol.write_json_atomically(out_dir / protocol.REPORT_FILE, report)


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        return int(raw) if raw.strip() else default
    except ValueError:
        protocol.fail_bad_input(f"{name} must be an integer, not {raw!r}")


def _trace(event: str) -> None:
    path = os.environ.get("PREVIEW_MOCK_TRACE_FILE")
    if path:
        with open(path, "a", encoding="utf-8") as file:
            file.write(f"{event} {os.getpid()} {time.time():.6f}\n")
