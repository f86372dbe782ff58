"""Running a renderer program safely: its own process group, a timeout, an
allow-listed environment, output streamed to a log file, exit codes classified.

The renderer protocol itself is described in :mod:`renderers.protocol`.
"""

from __future__ import annotations

import collections
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO

import attrs

from renderers import protocol

from .errors import BadInputError, PermanentJobError, TransientJobError

#: Environment variables a renderer may see; everything else (tokens, keys,
#: broker URLs with passwords) stays in the worker.
ENV_ALLOW_LIST = frozenset(
    {
        "PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "USER", "LOGNAME",
        "PYTHONPATH", "VIRTUAL_ENV", "SYSTEMROOT", "FONTCONFIG_FILE", "FONTCONFIG_PATH",
        "PREVIEW_FFMPEG", "PREVIEW_MOCK_DELAY_MS", "PREVIEW_MOCK_EXIT_CODE", "PREVIEW_MOCK_HANG",
        "PREVIEW_MOCK_TRACE_FILE", "PREVIEW_MOCK_WARNINGS", "PREVIEW_FONT_DIRS", "PREVIEW_SYSTEM_FONTS",
    }
)  # fmt: skip
ENV_ALLOW_PREFIXES = ("LC_",)

#: Seconds between SIGTERM and SIGKILL when stopping a renderer's process group.
KILL_GRACE_S = 2.0
#: Lines of output kept for the error message.
TAIL_LINES = 15
#: Seconds between checks of ``should_stop`` (a cancelled job) while a renderer runs.
STOP_POLL_S = 1.0


class RenderStopped(Exception):
    """The renderer was killed because ``should_stop`` said so."""


def renderer_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The allow-listed subset of ``environ`` (default: ``os.environ``)."""
    source = os.environ if environ is None else environ
    return {
        name: value
        for name, value in source.items()
        if name in ENV_ALLOW_LIST or name.startswith(ENV_ALLOW_PREFIXES)
    }


@attrs.frozen
class RenderResult:
    exit_code: int
    seconds: float
    tail: tuple[str, ...]


def run_renderer(
    command: list[str],
    *,
    log_path: Path,
    timeout_s: float,
    on_progress: Callable[[float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    die_with_parent: bool = True,
) -> RenderResult:
    """Run ``command`` to completion; raise a :class:`JobError` subclass when it fails.

    The renderer runs in a new session (its own process group), which is
    killed whole on timeout, on error and when this thread is interrupted
    (dramatiq's shutdown notification), so no ffmpeg outlives its job. On
    Linux it also gets SIGKILL if the worker thread that started it dies.
    stdout and stderr are appended line by line to ``log_path`` as they come.
    ``should_stop`` is polled every :data:`STOP_POLL_S`; when it answers True
    the renderer is killed and :class:`RenderStopped` raised.
    ``die_with_parent=False`` is for renderers that set their own
    parent-death signal before anything that takes time (the built-in ones
    do, see :func:`renderers.protocol.die_with_parent`; otherwise the
    child gets :func:`renderers.protocol.die_with_parent_preexec`'s
    ``preexec_fn``): without a ``preexec_fn``
    the renderer is started with vfork instead of fork, which spares the
    worker copying its page tables and the copy-on-write faults after
    (about a third of a mock render's CPU; see BENCHMARKS.md).
    """
    started = time.monotonic()
    deadline = started + timeout_s
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab", buffering=0) as log:
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=renderer_environment() if env is None else dict(env),
                cwd=cwd,
                start_new_session=True,
                preexec_fn=protocol.die_with_parent_preexec() if die_with_parent else None,
            )
        except OSError as error:
            raise PermanentJobError(f"renderer {command[0]!r} cannot be started: {error}") from None
        outcome = "exited"
        try:
            outcome = _pump(process, log, tail, deadline, on_progress, should_stop)
        finally:
            if process.poll() is None:
                kill_process_group(process)
            process.wait()
            _signal_group(process.pid, signal.SIGKILL)  # stragglers the renderer left behind
        seconds = time.monotonic() - started
        log.write(f"# renderer exited with {process.returncode} after {seconds:.3f}s\n".encode())
    result = RenderResult(process.returncode, seconds, tuple(tail))
    if outcome == "stopped":
        raise RenderStopped("renderer stopped on request")
    if outcome == "timed out":
        raise TransientJobError(f"renderer timed out after {timeout_s:g}s and was killed{_tail_text(result)}")
    if result.exit_code == 0:
        return result
    if result.exit_code == protocol.EXIT_BAD_INPUT:
        raise BadInputError(f"renderer refused the input (exit code 2){_tail_text(result)}")
    if result.exit_code < 0:
        name = signal.Signals(-result.exit_code).name
        raise TransientJobError(f"renderer was killed by {name}{_tail_text(result)}")
    raise TransientJobError(f"renderer failed with exit code {result.exit_code}{_tail_text(result)}")


def _pump(
    process: subprocess.Popen[bytes],
    log: BinaryIO,
    tail: collections.deque[str],
    deadline: float,
    on_progress: Callable[[float], None] | None,
    should_stop: Callable[[], bool] | None,
) -> str:
    """Copy the renderer's output to the log until it exits: "exited", "timed out" or "stopped"."""
    selector = selectors.DefaultSelector()
    partial = {"stdout": b"", "stderr": b""}
    stdout, stderr = process.stdout, process.stderr
    if stdout is None or stderr is None:
        raise RuntimeError("the renderer's output must be piped")
    selector.register(stdout, selectors.EVENT_READ, "stdout")
    selector.register(stderr, selectors.EVENT_READ, "stderr")
    next_stop_check = time.monotonic() + STOP_POLL_S
    try:
        while selector.get_map():
            now = time.monotonic()
            remaining = deadline - now
            if remaining <= 0:
                kill_process_group(process)
                return "timed out"
            if should_stop is not None and now >= next_stop_check:
                next_stop_check = now + STOP_POLL_S
                if should_stop():
                    kill_process_group(process)
                    return "stopped"
            for key, _ in selector.select(timeout=min(remaining, STOP_POLL_S / 2)):
                stream = key.data
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                    lines = [partial[stream]] if partial[stream] else []
                else:
                    *lines, partial[stream] = (partial[stream] + chunk).split(b"\n")
                for raw in lines:
                    _handle_line(raw, stream, log, tail, on_progress)
        remaining = deadline - time.monotonic()
        try:
            process.wait(timeout=max(remaining, 0.01))
        except subprocess.TimeoutExpired:
            kill_process_group(process)
            return "timed out"
        return "exited"
    finally:
        selector.close()
        stdout.close()
        stderr.close()


def _handle_line(
    raw: bytes,
    stream: str,
    log: BinaryIO,
    tail: collections.deque[str],
    on_progress: Callable[[float], None] | None,
) -> None:
    text = raw.decode("utf-8", "replace").rstrip("\r")
    log.write(f"[{stream}] {text}\n".encode())
    if stream == "stdout" and text.startswith("progress="):
        try:
            fraction = float(text.partition("=")[2])
        except ValueError:
            return
        if on_progress is not None and 0.0 <= fraction <= 1.0:
            on_progress(fraction)
        return
    if text.strip():
        tail.append(text)


def kill_process_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the renderer's whole process group, then SIGKILL what is left."""
    group = process.pid  # start_new_session made the renderer its group's leader
    _signal_group(group, signal.SIGTERM)
    try:
        process.wait(timeout=KILL_GRACE_S)
    except subprocess.TimeoutExpired:
        pass
    _signal_group(group, signal.SIGKILL)


def _signal_group(group: int, signum: int) -> None:
    try:
        os.killpg(group, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _tail_text(result: RenderResult) -> str:
    return (": " + " | ".join(result.tail[-5:])) if result.tail else ""
