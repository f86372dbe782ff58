"""Running ffmpeg children.

Each child gets the parent-death signal in ``preexec_fn``
(:func:`renderers.protocol.die_with_parent_preexec`; the renderer is
single-threaded, so that is safe), so a killed renderer leaves no ffmpeg
behind. Several children run at once from one thread, multiplexed with
:mod:`selectors`: their stdin is fed from lazy iterators (frames are composed
only when the child that needs them starts), their stderr is streamed through
to ours line by line (the last lines are kept for the error message) and their
``-progress pipe:1`` output is turned into frame counts.
"""

from __future__ import annotations

import collections
import fcntl
import functools
import importlib.util
import os
import selectors
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, cast

from renderers.protocol import die_with_parent_preexec

#: Lines of a failed child's stderr repeated in our error message.
STDERR_TAIL_LINES = 20
#: Pipe buffer asked for on children's stdin, in bytes (frames are megabytes).
PIPE_SIZE_BYTES = 1 << 20


class FfmpegError(Exception):
    """An ffmpeg child failed; worth a retry (exit code 1) unless said otherwise."""

    def __init__(self, label: str, message: str, tail: Iterable[str] = ()) -> None:
        self.label = label
        self.tail = list(tail)
        super().__init__(f"ffmpeg ({label}): {message}")


def ffmpeg_exe() -> str:
    """``PREVIEW_FFMPEG`` when set, else the binary in the imageio-ffmpeg wheel."""
    override = os.environ.get("PREVIEW_FFMPEG")
    if override:
        if not (os.path.isfile(override) and os.access(override, os.X_OK)):
            raise FfmpegError("setup", f"PREVIEW_FFMPEG={override!r} is not an executable file")
        return override
    return _bundled_ffmpeg()


@functools.lru_cache(maxsize=1)
def _bundled_ffmpeg() -> str:
    # Looking in the wheel's binaries/ directory directly spares the import of
    # imageio_ffmpeg (~60 ms, a real share of a dry run); its own lookup is
    # the fallback for every other layout.
    found = importlib.util.find_spec("imageio_ffmpeg")
    if found is not None and found.origin:
        binaries = Path(found.origin).parent / "binaries"
        candidates = sorted(p for p in binaries.glob("ffmpeg-*") if os.access(p, os.X_OK))
        if len(candidates) == 1:
            return str(candidates[0])
    import imageio_ffmpeg

    exe: str = imageio_ffmpeg.get_ffmpeg_exe()
    return exe


def ffmpeg_identity(exe: str) -> dict[str, object]:
    """What identifies the ffmpeg build, cheaply, for cache keys."""
    stat = os.stat(exe)
    return {"path": os.path.realpath(exe), "size": stat.st_size, "mtimeNs": stat.st_mtime_ns}


def run_capture(label: str, args: list[str]) -> subprocess.CompletedProcess[bytes]:
    """Run a short ffmpeg (a probe, one frame) and return its output, whatever its exit code."""
    try:
        return subprocess.run(
            args,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            preexec_fn=die_with_parent_preexec(),
            check=False,
        )
    except OSError as error:
        raise FfmpegError(label, f"cannot start {args[0]}: {error}") from None


def start_background(label: str, args: list[str], stdout: IO[bytes], stderr: IO[bytes]) -> subprocess.Popen[bytes]:
    """Start a short ffmpeg that runs while the renderer does other work; it dies with the renderer.

    Its output goes to ``stdout`` and ``stderr`` (files: it never waits on a full pipe).
    """
    try:
        return subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            preexec_fn=die_with_parent_preexec(),
        )
    except OSError as error:
        raise FfmpegError(label, f"cannot start {args[0]}: {error}") from None


@dataclass
class Call:
    """One ffmpeg child to run."""

    label: str
    args: list[str]
    #: Builds the bytes to write to its stdin; called when the child starts.
    feed: Callable[[], Iterable[bytes]] | None = None
    #: Called after it exits with status 0 (e.g. to move its output into place).
    on_success: Callable[[], None] | None = None
    #: Frames it will write, for progress.
    frames: int = 0


@dataclass
class _Running:
    call: Call
    process: subprocess.Popen[bytes]
    started: float
    chunks: Iterator[bytes] | None
    pending: memoryview | None = None
    open_streams: int = 0
    buffers: dict[int, bytearray] = field(default_factory=dict)
    tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=STDERR_TAIL_LINES))


ProgressCallback = Callable[[str, int], None]


class Runner:
    """Runs :class:`Call` s, at most ``parallel`` at once, from this one thread."""

    def __init__(self, parallel: int, on_frames: ProgressCallback | None = None) -> None:
        self.parallel = max(1, parallel)
        self.on_frames = on_frames
        self.seconds: dict[str, float] = {}

    def run(self, calls: Iterable[Call]) -> dict[str, float]:
        """Run every call; return wall seconds per label. Raises FfmpegError."""
        queue = collections.deque(calls)
        selector = selectors.DefaultSelector()
        running: dict[int, _Running] = {}
        try:
            while queue or running:
                while queue and len(running) < self.parallel:
                    child = self._start(queue.popleft(), selector)
                    running[child.process.pid] = child
                for key, _ in selector.select(timeout=1.0):
                    child = running[key.data]
                    if key.fileobj is child.process.stdin:
                        self._write(child, selector)
                    else:
                        self._read(child, cast("IO[bytes]", key.fileobj), selector)  # registered: stdout or stderr
                for pid, child in list(running.items()):
                    if child.open_streams == 0:
                        del running[pid]
                        self._finish(child)
        finally:
            for child in running.values():
                child.process.kill()
                child.process.wait()
                for stream in (child.process.stdin, child.process.stdout, child.process.stderr):
                    if stream is not None and not stream.closed:
                        stream.close()
            selector.close()
        return self.seconds

    def _start(self, call: Call, selector: selectors.BaseSelector) -> _Running:
        chunks = iter(call.feed()) if call.feed is not None else None
        try:
            process = subprocess.Popen(
                call.args,
                stdin=subprocess.PIPE if chunks is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                preexec_fn=die_with_parent_preexec(),
            )
        except OSError as error:
            raise FfmpegError(call.label, f"cannot start {call.args[0]}: {error}") from None
        child = _Running(call, process, time.perf_counter(), chunks)
        for stream in (process.stdout, process.stderr):
            assert stream is not None
            os.set_blocking(stream.fileno(), False)
            child.buffers[stream.fileno()] = bytearray()
            selector.register(stream, selectors.EVENT_READ, process.pid)
            child.open_streams += 1
        if process.stdin is not None:
            os.set_blocking(process.stdin.fileno(), False)
            try:
                fcntl.fcntl(process.stdin.fileno(), fcntl.F_SETPIPE_SZ, PIPE_SIZE_BYTES)
            except (OSError, AttributeError):
                pass
            selector.register(process.stdin, selectors.EVENT_WRITE, process.pid)
            child.open_streams += 1
        return child

    def _write(self, child: _Running, selector: selectors.BaseSelector) -> None:
        stdin = child.process.stdin
        assert stdin is not None and child.chunks is not None
        try:
            while True:
                if child.pending is None or not len(child.pending):
                    chunk = next(child.chunks, None)
                    if chunk is None:
                        break
                    child.pending = memoryview(chunk).cast("B")
                written = os.write(stdin.fileno(), child.pending)
                child.pending = child.pending[written:]
                if len(child.pending):
                    return  # the pipe is full; wait until it is writable again
        except BlockingIOError:
            return
        except BrokenPipeError:
            pass  # ffmpeg stopped reading; its exit status tells why
        selector.unregister(stdin)
        stdin.close()
        child.open_streams -= 1

    def _read(self, child: _Running, stream: IO[bytes], selector: selectors.BaseSelector) -> None:
        fd = stream.fileno()
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        buffer = child.buffers[fd]
        is_stderr = stream is child.process.stderr
        if not data:
            selector.unregister(stream)
            stream.close()
            child.open_streams -= 1
            if buffer:
                self._line(child, bytes(buffer), is_stderr)
            return
        buffer += data
        while True:
            cut = max(buffer.rfind(b"\n"), buffer.rfind(b"\r"))
            if cut < 0:
                break
            lines, remainder = bytes(buffer[:cut]), bytes(buffer[cut + 1 :])
            buffer[:] = remainder
            for line in lines.replace(b"\r", b"\n").split(b"\n"):
                if line:
                    self._line(child, line, is_stderr)

    def _line(self, child: _Running, raw: bytes, is_stderr: bool) -> None:
        line = raw.decode("utf-8", "replace").rstrip()
        if is_stderr:
            child.tail.append(line)
            sys.stderr.write(f"ffmpeg[{child.call.label}]: {line}\n")
            sys.stderr.flush()
        elif line.startswith("frame=") and self.on_frames is not None:
            try:
                frames = int(line[len("frame=") :])
            except ValueError:
                return
            self.on_frames(child.call.label, frames)

    def _finish(self, child: _Running) -> None:
        returncode = child.process.wait()
        self.seconds[child.call.label] = time.perf_counter() - child.started
        if returncode != 0:
            raise FfmpegError(child.call.label, f"exited with status {returncode}", child.tail)
        if self.on_frames is not None and child.call.frames:
            self.on_frames(child.call.label, child.call.frames)
        if child.call.on_success is not None:
            child.call.on_success()
