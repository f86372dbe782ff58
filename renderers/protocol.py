"""The renderer protocol, shared by every renderer shipped here.

Invocation: ``RENDERER SPEC.json OUT_DIR [--dry-run]``.

SPEC.json (written by the render stage; all asset paths already resolved to
local absolute files)::

    {
      "specVersion": 1,
      "jobId": "…", "chapterId": "…",
      "output": {"width": 1280, "height": 720, "fps": 30},
      "steps": [{"id": "intro", "durationMs": 3000, "title": "…" | null,
                 "text": "…" | null, "asset": "cover" | null,
                 "background": "#102030"}],
      "assets": {"cover": {"type": "image" | "video" | "audio",
                           "path": "/abs/file", "sha256": "…" | null,
                           "uri": "images/cover.png" | null}},
      "audio": {"asset": "narration", "volume": 1.0,
                "fadeInMs": 0, "fadeOutMs": 500} | null,
      "cacheDir": "/abs/dir" | null
    }

An asset's ``uri`` is the request's (``data:`` URIs by their media type,
URLs without their query): errors and warnings name the asset by its id and
``uri`` (``asset 'cover' (uri images/cover.png): …``), never by ``path``, which
is the server's.

Outputs in OUT_DIR: ``video.mp4`` (not on a dry run), ``poster.jpg``,
``plan.json`` and ``report.json`` (``{"renderer", "version", "dryRun",
"segments": [{"step", "reused", "seconds"}], "timings": {…}}``).
Progress lines ``progress=0.42`` go to stdout. Exit codes below.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn

#: Exit code: success.
EXIT_OK = 0
#: Exit code: the spec or an asset is bad; retrying cannot help (permanent).
EXIT_BAD_INPUT = 2
#: Exit code: anything else failed; worth retrying.
EXIT_FAILURE = 1

SPEC_VERSION = 1

VIDEO_FILE = "video.mp4"
POSTER_FILE = "poster.jpg"
PLAN_FILE = "plan.json"
REPORT_FILE = "report.json"

_PR_SET_PDEATHSIG = 1


class BadInput(Exception):
    """Raised by a renderer for input no retry can fix (exit code 2)."""


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies.

    A renderer whose worker is killed must not keep running. Elsewhere this is
    a no-op; the render stage's process-group kill still applies.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(EXIT_FAILURE)


def report_progress(fraction: float) -> None:
    """Print one ``progress=0.42`` line (clamped to 0..1) and flush it."""
    fraction = min(1.0, max(0.0, fraction))
    sys.stdout.write(f"progress={fraction:.3f}\n")
    sys.stdout.flush()


def load_spec(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read SPEC.json; raise :class:`BadInput` naming the problem."""
    try:
        with open(path, "rb") as file:
            spec = json.load(file)
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


def write_json_atomically(path: Path, data: Any) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(temporary, path)


def parse_argv(argv: list[str]) -> tuple[Path, Path, bool]:
    """Return (spec path, out dir, dry run) or exit 2 with a usage message."""
    args = [arg for arg in argv if arg != "--dry-run"]
    dry_run = len(args) != len(argv)
    if len(args) != 2 or any(arg.startswith("-") for arg in args):
        fail_bad_input("usage: RENDERER SPEC.json OUT_DIR [--dry-run]")
    return Path(args[0]), Path(args[1]), dry_run


def fail_bad_input(message: str) -> NoReturn:
    print(f"bad input: {message}", file=sys.stderr, flush=True)
    raise SystemExit(EXIT_BAD_INPUT)
