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

This module is the protocol's one home: the renderers shipped here (the mock
and ffmpeg) and the worker that starts them (``preview_actors.renderer``)
all import it. A mock render is mostly interpreter start-up, so importing it
costs only ``os`` and ``sys``: ``json`` and ``ctypes`` are imported by the
functions that use them, and typing names only by type checkers.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing would double this module's cost
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, NoReturn

#: Exit code: success.
EXIT_OK = 0
#: Exit code: anything else failed; worth retrying.
EXIT_FAILURE = 1
#: Exit code: the spec or an asset is bad; retrying cannot help (permanent).
EXIT_BAD_INPUT = 2

#: The ``specVersion`` this protocol describes; any other is bad input.
SPEC_VERSION = 1

#: Output files, in OUT_DIR.
VIDEO_FILE = "video.mp4"
POSTER_FILE = "poster.jpg"
PLAN_FILE = "plan.json"
REPORT_FILE = "report.json"

#: ``prctl`` option that sets the signal a process gets when its parent dies (linux/prctl.h).
_PR_SET_PDEATHSIG = 1
#: SIGKILL's number on Linux, the only platform with ``PR_SET_PDEATHSIG`` (spares importing signal).
_SIGKILL = 9


class BadInput(Exception):
    """Raised by a renderer for input no retry can fix (exit code :data:`EXIT_BAD_INPUT`)."""


#: libc's ``prctl`` once looked up (None: not to be had), by :func:`_prctl`.
_prctl_found: list[Callable[..., int] | None] = []


def _prctl() -> Callable[..., int] | None:
    """libc's ``prctl`` on Linux, or None (another platform, or no libc to load); looked up once."""
    if not _prctl_found:
        prctl: Callable[..., int] | None = None
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                prctl = ctypes.CDLL(None, use_errno=True).prctl
            except (ImportError, OSError, AttributeError):
                prctl = None
        _prctl_found.append(prctl)
    return _prctl_found[0]


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies; call it first thing.

    A renderer whose worker is killed must not keep running. If the parent
    is already gone (this process was re-parented before the request took
    effect) the process exits at once with :data:`EXIT_FAILURE`. Elsewhere
    than Linux this is a no-op; the render stage's process-group kill still
    applies.
    """
    prctl = _prctl()
    if prctl is None:
        return
    prctl(_PR_SET_PDEATHSIG, _SIGKILL, 0, 0, 0)
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(EXIT_FAILURE)


def die_with_parent_preexec() -> Callable[[], None] | None:
    """A ``preexec_fn`` giving a child SIGKILL when this process dies, or None where it cannot.

    For children that do not call :func:`die_with_parent` themselves (custom
    renderers, ffmpeg). libc is loaded here, before the fork; the child only
    calls ``prctl`` and, if this process died in between, exits with status 1.
    None on platforms without ``prctl``: pass it on as ``preexec_fn=None``.
    Note that a ``preexec_fn`` makes :mod:`subprocess` fork rather than vfork.
    """
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def preexec() -> None:  # pragma: no cover - runs in the child between fork and exec
        prctl(_PR_SET_PDEATHSIG, _SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(EXIT_FAILURE)

    return preexec


def report_progress(fraction: float) -> None:
    """Print one ``progress=0.420`` line (``fraction`` of the work, clamped to 0..1) and flush it."""
    fraction = min(1.0, max(0.0, fraction))
    sys.stdout.write(f"progress={fraction:.3f}\n")
    sys.stdout.flush()


def load_spec(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read SPEC.json at ``path`` and check its envelope.

    Raises :class:`BadInput` naming the problem: a missing or unreadable
    file, JSON that is not an object, another ``specVersion``, or a missing
    ``output``, ``steps`` or ``assets``. What is inside those is the
    renderer's to check.
    """
    import json

    try:
        with open(path, "rb") as file:
            spec = json.load(file)
    except FileNotFoundError:
        raise BadInput(f"spec file {os.fspath(path)} does not exist") from None
    except (OSError, ValueError) as error:
        raise BadInput(f"spec file {os.fspath(path)} is unreadable: {error}") from None
    if not isinstance(spec, dict):
        raise BadInput("spec must be a JSON object")
    if spec.get("specVersion") != SPEC_VERSION:
        raise BadInput(f"unsupported specVersion {spec.get('specVersion')!r}")
    for key in ("output", "steps", "assets"):
        if key not in spec:
            raise BadInput(f"spec lacks {key!r}")
    return spec


def write_json_atomically(path: str | os.PathLike[str], data: object, *, indent: int | None = 2) -> None:
    """Write ``data`` as JSON (keys sorted, ``indent`` spaces or one line when None) to ``path``.

    Written to a hidden temporary file beside ``path`` and renamed over it,
    so a reader sees the old file or the whole new one. Raises ``TypeError``
    for values JSON cannot hold and ``OSError`` from the file system.
    """
    import json

    directory, name = os.path.split(os.fspath(path))
    temporary = os.path.join(directory, f".{name}.tmp")
    text = json.dumps(data, indent=indent, sort_keys=True)
    with open(temporary, "w", encoding="utf-8") as file:
        file.write(text)
    os.replace(temporary, path)


def parse_argv(argv: list[str]) -> tuple[str, str, bool]:
    """Return (spec path, out dir, dry run) from ``SPEC.json OUT_DIR [--dry-run]``, or exit 2 with a usage message."""
    args = [arg for arg in argv if arg != "--dry-run"]
    dry_run = len(args) != len(argv)
    if len(args) != 2 or any(arg.startswith("-") for arg in args):
        fail_bad_input("usage: RENDERER SPEC.json OUT_DIR [--dry-run]")
    return args[0], args[1], dry_run


def fail_bad_input(message: str) -> NoReturn:
    """Print ``bad input: message`` to stderr and exit with :data:`EXIT_BAD_INPUT` (raises SystemExit)."""
    print(f"bad input: {message}", file=sys.stderr, flush=True)
    raise SystemExit(EXIT_BAD_INPUT)
