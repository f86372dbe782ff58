"""A fast, deterministic stand-in for the ffmpeg renderer, for pipeline tests.

It follows the renderer protocol without encoding anything: ``video.mp4`` holds
bytes derived from the spec (so equal specs give equal "videos"), the poster is
a fixed tiny JPEG. Its behaviour is steered by the environment:

- ``PREVIEW_MOCK_DELAY_MS``: total time to take, spread over the progress lines;
- ``PREVIEW_MOCK_EXIT_CODE``: exit with this code instead of succeeding;
- ``PREVIEW_MOCK_HANG``: when set to a true value, never finish;
- ``PREVIEW_MOCK_TRACE_FILE``: append "start PID T" / "end PID T" lines there,
  so tests can observe how many renders overlap;
- ``PREVIEW_MOCK_WARNINGS``: a JSON value written as ``report.json``'s
  ``warnings`` as it is (``[{"code", "message", "step"?}]``, or anything
  malformed, to test how the worker takes it); unset: ``[]``.

Start-up is most of what a mock render costs (a pipeline benchmark spawns
thousands), so importing this module costs only :mod:`renderers.protocol`
(itself ``os`` and ``sys``); ``json``, ``hashlib``, ``binascii`` and ``time``
are imported where they are used. ``python -m bench.mock_startup`` measures it.
"""

from __future__ import annotations

import os
import sys

from renderers import protocol
from renderers.protocol import BadInput

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: typing costs as much as the rest of the start-up
if TYPE_CHECKING:
    from typing import Any

NAME = "mock"
VERSION = "1.0.0"

#: A 16x9 JPEG (base64), the poster of every mock render.
POSTER_JPEG_BASE64 = (
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERXRTc4UG1RV19i"
    "Z2hnPk1xeXBkeFxlZ2P/2wBDARESEhgVGC8aGi9jQjhCY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2Nj"
    "Y2NjY2NjY2P/wAARCAAJABADASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUF"
    "BAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVW"
    "V1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi"
    "4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAEC"
    "AxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVm"
    "Z2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq"
    "8vP09fb3+Pn6/9oADAMBAAIRAxEAPwDjaKKK1Mz/2Q=="
)

#: Progress lines printed over a render.
PROGRESS_STEPS = 4


def main(argv: list[str] | None = None) -> int:
    """Run one mock render: ``main(["SPEC.json", "OUT_DIR", "--dry-run"])``; return the exit code.

    Bad input (usage, spec, a missing asset, a bad ``PREVIEW_MOCK_*`` value)
    exits with :data:`~renderers.protocol.EXIT_BAD_INPUT` by ``SystemExit``.
    """
    if _will_wait():
        protocol.die_with_parent()
    spec_path, out_dir, dry_run = protocol.parse_argv(sys.argv[1:] if argv is None else argv)
    _trace("start")
    try:
        spec = protocol.load_spec(spec_path)
        _check_assets(spec)
        warnings = _env_json("PREVIEW_MOCK_WARNINGS", [])
    except BadInput as error:
        protocol.fail_bad_input(str(error))
    delay_s = _env_int("PREVIEW_MOCK_DELAY_MS", 0) / 1000
    for step in range(1, PROGRESS_STEPS + 1):
        if delay_s:
            _sleep(delay_s / PROGRESS_STEPS)
        protocol.report_progress(step / PROGRESS_STEPS)
    if _hang():
        print("mock renderer: hanging as asked", file=sys.stderr, flush=True)
        while True:
            _sleep(3600)
    exit_code = _env_int("PREVIEW_MOCK_EXIT_CODE", 0)
    if exit_code:
        print(f"mock renderer: failing with exit code {exit_code} as asked", file=sys.stderr, flush=True)
        _trace("end")
        return exit_code
    _write_outputs(spec, out_dir, dry_run, warnings)
    _trace("end")
    return protocol.EXIT_OK


def _check_assets(spec: dict[str, Any]) -> None:
    for asset_id, asset in spec["assets"].items():
        path = asset.get("path", "") or "."
        if not os.path.isfile(path):
            # Named by the request's uri (a path of the server only when run by hand, without one).
            raise BadInput(f"asset {asset_id!r} ({'uri ' + asset['uri'] if asset.get('uri') else path}): file not found")


def _write_outputs(spec: dict[str, Any], out_dir: str, dry_run: bool, warnings: object) -> None:
    import binascii
    import json

    os.makedirs(out_dir, exist_ok=True)
    timeline = []
    start_ms = 0
    for step in spec["steps"]:
        timeline.append({"step": step["id"], "startMs": start_ms, "durationMs": step["durationMs"]})
        start_ms += step["durationMs"]
    plan = {"renderer": NAME, "version": VERSION, "output": spec["output"], "timeline": timeline, "durationMs": start_ms}
    protocol.write_json_atomically(os.path.join(out_dir, protocol.PLAN_FILE), plan, indent=None)
    with open(os.path.join(out_dir, protocol.POSTER_FILE), "wb") as poster:
        poster.write(binascii.a2b_base64(POSTER_JPEG_BASE64))
    if not dry_run:
        import hashlib

        identity = json.dumps({"output": spec["output"], "steps": spec["steps"], "audio": spec.get("audio")}, sort_keys=True)
        seed = hashlib.sha256(identity.encode()).digest()
        with open(os.path.join(out_dir, protocol.VIDEO_FILE), "wb") as video:
            video.write(b"MOCKMP4\n" + identity.encode() + b"\n" + seed * 64)
    report = {
        "renderer": NAME,
        "version": VERSION,
        "dryRun": dry_run,
        "segments": [{"step": step["id"], "reused": False, "seconds": 0.0} for step in spec["steps"]],
        "timings": {},
        "warnings": warnings,
    }
    protocol.write_json_atomically(os.path.join(out_dir, protocol.REPORT_FILE), report, indent=None)


# -- The rest -----------------------------------------------------------------------------------


def _hang() -> bool:
    return os.environ.get("PREVIEW_MOCK_HANG", "").lower() in ("1", "true", "yes")


def _will_wait() -> bool:
    """Whether this render will sleep (a delay, a hang): only then can it outlive a killed worker.

    A render that does not wait is over in milliseconds, so it spares itself the
    parent-death signal (``ctypes``: a sixth of its start-up).
    """
    return _hang() or os.environ.get("PREVIEW_MOCK_DELAY_MS", "").strip() not in ("", "0")


def _sleep(seconds: float) -> None:
    import time

    time.sleep(seconds)


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        return int(raw) if raw.strip() else default
    except ValueError:
        protocol.fail_bad_input(f"{name} must be an integer, not {raw!r}")


def _env_json(name: str, default: object) -> object:
    raw = os.environ.get(name, "")
    if not raw.strip():
        return default
    import json

    try:
        return json.loads(raw)
    except ValueError as error:
        raise BadInput(f"{name} must be JSON, not {raw!r}: {error}") from None


def _trace(event: str) -> None:
    path = os.environ.get("PREVIEW_MOCK_TRACE_FILE")
    if path:
        import time

        with open(path, "a", encoding="utf-8") as file:
            file.write(f"{event} {os.getpid()} {time.time():.6f}\n")
