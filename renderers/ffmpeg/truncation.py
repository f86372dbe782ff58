"""Clips cut short: how much of each can be read, against what its header declares.

A faststart MP4 (its header first) cut in half still probes as whole: its
header declares every frame. ffmpeg decodes what is there and stops, and the
step holds the last readable frame — which looks like a short clip, silently.
So the clips' packets are read (``-c copy``: demuxed, not decoded) for as long
as any step shows them, in one ffmpeg run for all clips, and a step that shows
a clip for longer than can be read gets a ``truncated_asset`` warning in
``report.json``::

    {"code": "truncated_asset", "step": "demo",
     "message": "asset 'clip' (uri video/demo.mp4): only 1.2 s of the 4.0 s its header declares could be decoded"}

A packet the demuxer flags corrupt (the one cut through) or discarded does not
count as readable; a clip none of whose frames can be read (cut inside its
first frame: it probes fine, then every decode fails) is bad input, naming
the asset, not an ffmpeg failure worth a retry. The scan runs while the plan
is made (about 10 ms of a render's time).
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from typing import IO

from renderers.ffmpeg.assets import ResolvedAsset
from renderers.ffmpeg.probe import input_arg
from renderers.ffmpeg.process import FfmpegError, start_background
from renderers.ffmpeg.spec import Spec
from renderers.protocol import BadInput

#: Warning code of a clip cut short.
CODE = "truncated_asset"
#: Names the scan in errors.
LABEL = "truncation scan"
#: A clip may read this much shorter than a step shows it before that step is warned, in seconds.
TOLERANCE_S = 0.25
#: Read this much beyond what the steps show, in seconds (a frame past the end proves it is there).
MARGIN_S = 0.5
#: ``AV_PKT_FLAG_CORRUPT | AV_PKT_FLAG_DISCARD``: packets that show nothing.
_UNSHOWN_FLAGS = 0x2 | 0x4
#: ``AV_NOPTS_VALUE`` as framecrc prints it.
_NO_PTS = -(1 << 63)

_TIME_BASE = re.compile(r"^#tb (\d+): (\d+)/(\d+)\s*$", re.MULTILINE)
_FLAGS = re.compile(r"\bF=0x([0-9a-fA-F]+)")


@dataclass(frozen=True)
class Clip:
    """A video asset the steps show, and for how long at most, in seconds."""

    resolved: ResolvedAsset
    declared_s: float
    shown_s: float


class Scan:
    """The clips' packets, read by one ffmpeg in the background while the renderer plans.

    :meth:`start` it as soon as the assets are checked, as a context manager
    (leaving it stops the scan), and ask :meth:`warnings` before the first
    frame is drawn: a clip none of whose frames can be read is bad input.
    """

    def __init__(self, spec: Spec, clips: dict[str, Clip], ffmpeg: str) -> None:
        """Start reading ``clips`` (nothing to start when there are none).

        Raises :class:`~renderers.ffmpeg.process.FfmpegError` when ffmpeg cannot be started.
        """
        self.spec = spec
        self.clips = clips
        self._process: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None
        self._errors: IO[bytes] | None = None
        if clips:
            self._output, self._errors = tempfile.TemporaryFile(), tempfile.TemporaryFile()
            try:
                args = scan_args(ffmpeg, list(clips.values()))
                self._process = start_background(LABEL, args, self._output, self._errors)
            except BaseException:
                self.stop()
                raise

    @classmethod
    def start(cls, spec: Spec, assets: dict[str, ResolvedAsset], ffmpeg: str) -> Scan:
        """Start reading the clips ``spec``'s steps show; raises what :class:`Scan` raises."""
        return cls(spec, shown_clips(spec, assets), ffmpeg)

    def __enter__(self) -> Scan:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def warnings(self) -> list[dict[str, str]]:
        """``truncated_asset`` warnings, one per step showing a clip for longer than it can be read.

        Waits for the scan. Raises :class:`~renderers.protocol.BadInput` naming a
        clip none of which can be read (its header whole, its first frame cut),
        and :class:`~renderers.ffmpeg.process.FfmpegError` when the scan was killed.
        """
        if self._process is None or self._output is None or self._errors is None:
            return []
        returncode = self._process.wait()
        self._output.seek(0)
        spans = packet_spans(self._output.read().decode("ascii", "replace"))
        if returncode < 0:  # killed: says nothing about the clips
            self._errors.seek(0)
            tail = self._errors.read().decode("utf-8", "replace").splitlines()[-5:]
            raise FfmpegError(LABEL, f"exited with status {returncode}", tail)
        readable = {clip.resolved.id: float(spans.get(index, 0)) for index, clip in enumerate(self.clips.values())}
        for clip in self.clips.values():
            if readable[clip.resolved.id] <= 0:
                problem = "not a decodable video file (none of its frames can be read)"
                raise BadInput(clip.resolved.asset.problem(problem))
        found = []
        for step in self.spec.steps:
            shown = self.clips.get(step.asset) if step.asset is not None else None
            if shown is None:
                continue
            seconds = readable[shown.resolved.id]
            if seconds < min(shown.declared_s, step.duration_ms / 1000) - TOLERANCE_S:
                message = shown.resolved.asset.problem(
                    f"only {seconds:.1f} s of the {shown.declared_s:.1f} s its header declares could be decoded"
                )
                found.append({"code": CODE, "message": message, "step": step.id})
        return found

    def stop(self) -> None:
        """Kill the scan if it still runs, and let its output go."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        for file in (self._output, self._errors):
            if file is not None:
                file.close()


def shown_clips(spec: Spec, assets: dict[str, ResolvedAsset]) -> dict[str, Clip]:
    """The video assets some step shows whose header declares a duration, by id."""
    clips: dict[str, Clip] = {}
    for step in spec.steps:
        item = assets.get(step.asset) if step.asset is not None else None
        if item is None or item.asset.type != "video" or item.media is None or not item.media.duration_s:
            continue
        known = clips.get(item.id)
        shown_s = max(step.duration_ms / 1000, known.shown_s if known else 0.0)
        clips[item.id] = Clip(item, item.media.duration_s, shown_s)
    return clips


def scan_args(ffmpeg: str, clips: list[Clip]) -> list[str]:
    """One ffmpeg run printing every packet of each clip's first video stream (``framecrc``), output stream i
    being clip i, each read for as long as it is shown (and :data:`MARGIN_S` more)."""
    args = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error"]
    for clip in clips:
        read_s = min(clip.declared_s, clip.shown_s) + MARGIN_S
        args += ["-t", f"{read_s:.3f}", "-i", input_arg(clip.resolved.asset.path)]
    for index in range(len(clips)):
        args += ["-map", f"{index}:v:0"]
    return [*args, "-c", "copy", "-f", "framecrc", "pipe:1"]


def packet_spans(framecrc: str) -> dict[int, Fraction]:
    """Seconds from the first shown packet's start to the last one's end, by stream index.

    ``framecrc`` lines are ``stream, dts, pts, duration, size, crc[, F=0x…][, S=…]``
    in the stream's time base (its ``#tb`` line).
    """
    time_bases = {int(m.group(1)): Fraction(int(m.group(2)), int(m.group(3))) for m in _TIME_BASE.finditer(framecrc)}
    starts: dict[int, int] = {}
    ends: dict[int, int] = {}
    for line in framecrc.splitlines():
        if not line or line.startswith("#"):
            continue
        fields = [field.strip() for field in line.split(",")]
        try:
            stream, dts, pts, duration = (int(value) for value in fields[:4])
        except ValueError:
            continue
        flags = _FLAGS.search(line)
        if flags and int(flags.group(1), 16) & _UNSHOWN_FLAGS:
            continue
        start = dts if pts == _NO_PTS else pts
        starts[stream] = min(starts.get(stream, start), start)
        ends[stream] = max(ends.get(stream, start + duration), start + duration)
    return {stream: (ends[stream] - starts[stream]) * time_bases[stream] for stream in starts if stream in time_bases}
