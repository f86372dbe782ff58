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
thousands), so this module imports only ``os`` and ``sys`` and what it uses
on its path: the C parts of ``json`` and ``hashlib`` (``_json``, ``_sha256``)
rather than the packages (which pull in ``re`` and OpenSSL), and ``ctypes``
for the parent-death signal. It does not import :mod:`renderers.protocol`
(``pathlib``, ``typing``, ``json``: three times the cost of the rest); the
constants of the protocol it needs are repeated below and kept equal to
``renderers.protocol``'s by ``tests/renderers/test_mock.py``.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing itself costs as much as the rest of the start-up
if TYPE_CHECKING:
    from typing import Any, NoReturn

NAME = "mock"
VERSION = "1.0.0"

# The renderer protocol (renderers.protocol), repeated to keep start-up light.
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
SPEC_VERSION = 1
VIDEO_FILE = "video.mp4"
POSTER_FILE = "poster.jpg"
PLAN_FILE = "plan.json"
REPORT_FILE = "report.json"
_PR_SET_PDEATHSIG = 1
_SIGKILL = 9

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


class BadInput(Exception):
    """Input no retry can fix (exit code 2)."""


def main(argv: list[str] | None = None) -> int:
    _die_with_parent()
    spec_path, out_dir, dry_run = _parse_argv(sys.argv[1:] if argv is None else argv)
    _trace("start")
    try:
        spec = _load_spec(spec_path)
        _check_assets(spec)
        warnings = _env_json("PREVIEW_MOCK_WARNINGS", [])
    except BadInput as error:
        _fail_bad_input(str(error))
    delay_s = _env_int("PREVIEW_MOCK_DELAY_MS", 0) / 1000
    for step in range(1, PROGRESS_STEPS + 1):
        if delay_s:
            _sleep(delay_s / PROGRESS_STEPS)
        sys.stdout.write(f"progress={step / PROGRESS_STEPS:.3f}\n")
        sys.stdout.flush()
    if os.environ.get("PREVIEW_MOCK_HANG", "").lower() in ("1", "true", "yes"):
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
    return EXIT_OK


def _die_with_parent() -> None:
    """SIGKILL this process when its parent dies (Linux; as ``renderers.protocol.die_with_parent``)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, _SIGKILL, 0, 0, 0)
    except (OSError, AttributeError, ImportError):
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(EXIT_FAILURE)


def _parse_argv(argv: list[str]) -> tuple[str, str, bool]:
    args = [arg for arg in argv if arg != "--dry-run"]
    dry_run = len(args) != len(argv)
    if len(args) != 2 or any(arg.startswith("-") for arg in args):
        _fail_bad_input("usage: RENDERER SPEC.json OUT_DIR [--dry-run]")
    return args[0], args[1], dry_run


def _load_spec(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as file:
            spec = _loads(file.read())
    except FileNotFoundError:
        raise BadInput(f"spec file {path} does not exist") from None
    except (OSError, ValueError) as error:
        raise BadInput(f"spec file {path} is unreadable: {error}") from None
    if not isinstance(spec, dict):
        raise BadInput("spec must be a JSON object")
    if spec.get("specVersion") != SPEC_VERSION:
        raise BadInput(f"unsupported specVersion {spec.get('specVersion')!r}")
    for key in ("output", "steps", "assets"):
        if key not in spec:
            raise BadInput(f"spec lacks {key!r}")
    return spec


def _check_assets(spec: dict[str, Any]) -> None:
    for asset_id, asset in spec["assets"].items():
        path = asset.get("path", "") or "."
        if not os.path.isfile(path):
            # Named by the request's uri (a path of the server only when run by hand, without one).
            raise BadInput(f"asset {asset_id!r} ({'uri ' + asset['uri'] if asset.get('uri') else path}): file not found")


def _write_outputs(spec: dict[str, Any], out_dir: str, dry_run: bool, warnings: object) -> None:
    os.makedirs(out_dir, exist_ok=True)
    timeline = []
    start_ms = 0
    for step in spec["steps"]:
        timeline.append({"step": step["id"], "startMs": start_ms, "durationMs": step["durationMs"]})
        start_ms += step["durationMs"]
    plan = {"renderer": NAME, "version": VERSION, "output": spec["output"], "timeline": timeline, "durationMs": start_ms}
    _write_json_atomically(os.path.join(out_dir, PLAN_FILE), plan)
    import binascii

    with open(os.path.join(out_dir, POSTER_FILE), "wb") as poster:
        poster.write(binascii.a2b_base64(POSTER_JPEG_BASE64))
    if not dry_run:
        identity = _dumps({"output": spec["output"], "steps": spec["steps"], "audio": spec.get("audio")}).encode()
        seed = _sha256(identity)
        with open(os.path.join(out_dir, VIDEO_FILE), "wb") as video:
            video.write(b"MOCKMP4\n" + identity + b"\n" + seed * 64)
    report = {
        "renderer": NAME,
        "version": VERSION,
        "dryRun": dry_run,
        "segments": [{"step": step["id"], "reused": False, "seconds": 0.0} for step in spec["steps"]],
        "timings": {},
        "warnings": warnings,
    }
    _write_json_atomically(os.path.join(out_dir, REPORT_FILE), report)


def _write_json_atomically(path: str, data: object) -> None:
    directory, name = os.path.split(path)
    temporary = os.path.join(directory, f".{name}.tmp")
    with open(temporary, "w", encoding="utf-8") as file:
        file.write(_dumps(data))
        file.write("\n")
    os.replace(temporary, path)


# -- JSON and SHA-256 through their C accelerators ----------------------------------------------


class _DecodeContext:
    """What ``_json.make_scanner`` reads from a ``json.JSONDecoder``, with json.loads' defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}.__getitem__


_WHITESPACE = " \t\n\r"


def _loads(data: bytes) -> object:
    """``json.loads(data)`` for UTF-8 text, by the C scanner; anything unusual goes to ``json`` itself."""
    try:
        from _json import make_scanner

        text = data.decode("utf-8")
        start = len(text) - len(text.lstrip(_WHITESPACE))
        # typeshed wants a JSONDecoder-like context; the scanner only reads these attributes.
        value, end = make_scanner(_DecodeContext)(text, start)  # type: ignore[arg-type]
        if text[end:].strip(_WHITESPACE):
            raise ValueError("extra data")
        return value
    except (ImportError, ValueError, StopIteration, SystemError):
        # SystemError: the C scanner reports bad JSON through json.decoder, which it does not
        # import itself (CPython 3.11). Either way json.loads gives the same result or error.
        import json

        return json.loads(data)


def _not_serializable(value: object) -> object:
    raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")


def _dumps(value: object) -> str:
    """``json.dumps(value, sort_keys=True)``, by the C encoder when there is one."""
    try:
        from _json import encode_basestring_ascii, make_encoder
    except ImportError:
        import json

        return json.dumps(value, sort_keys=True)
    encode = make_encoder({}, _not_serializable, encode_basestring_ascii, None, ": ", ", ", True, False, True)
    return "".join(encode(value, 0))


def _sha256(data: bytes) -> bytes:
    # typeshed has no stub for _sha256, and types _sha2 from Python 3.12 on only (mypy checks as 3.10).
    try:
        from _sha256 import sha256  # type: ignore[import-not-found]  # CPython <= 3.11
    except ImportError:
        try:
            from _sha2 import sha256  # type: ignore[import-not-found]  # CPython >= 3.12
        except ImportError:
            from hashlib import sha256
    digest: bytes = sha256(data).digest()
    return digest


# -- The rest -----------------------------------------------------------------------------------


def _sleep(seconds: float) -> None:
    import time

    time.sleep(seconds)


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        return int(raw) if raw.strip() else default
    except ValueError:
        _fail_bad_input(f"{name} must be an integer, not {raw!r}")


def _env_json(name: str, default: object) -> object:
    raw = os.environ.get(name, "")
    if not raw.strip():
        return default
    try:
        return _loads(raw.encode("utf-8"))
    except ValueError as error:
        raise BadInput(f"{name} must be JSON, not {raw!r}: {error}") from None


def _fail_bad_input(message: str) -> NoReturn:
    print(f"bad input: {message}", file=sys.stderr, flush=True)
    raise SystemExit(EXIT_BAD_INPUT)


def _trace(event: str) -> None:
    path = os.environ.get("PREVIEW_MOCK_TRACE_FILE")
    if path:
        import time

        with open(path, "a", encoding="utf-8") as file:
            file.write(f"{event} {os.getpid()} {time.time():.6f}\n")
