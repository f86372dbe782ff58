"""What is in a video or audio file, read from ``ffmpeg -i`` (there is no ffprobe).

All files are probed by one ffmpeg run that opens them as inputs and stops
before writing anything: ffmpeg prints each input's header as it opens it, and
stops at the first one it cannot open, naming it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from renderers.ffmpeg.colour import ClipColour, parse_declared
from renderers.ffmpeg.process import run_capture

_INPUT = re.compile(r"^Input #(\d+), ", re.MULTILINE)
_DURATION = re.compile(r"^\s+Duration: (?:(\d+):(\d\d):(\d\d(?:\.\d+)?)|N/A)", re.MULTILINE)
_STREAM = re.compile(r"^\s+Stream #\d+:\d+\S*: (\w+): (.*)$", re.MULTILINE)
_SIZE = re.compile(r", (\d{1,6})x(\d{1,6})[ ,]")
#: The pixel format and what ffmpeg says about it, just before the frame size.
_PIXELS = re.compile(r", ([a-z0-9_]+)(?:\(([^)]*)\))?, \d{1,6}x\d{1,6}[ ,]")
#: WebM's flag for a VP8/VP9 stream that carries an alpha plane (the native decoders drop it).
_ALPHA_MODE = re.compile(r"^\s+alpha_mode\s*: 1\s*$", re.MULTILINE | re.IGNORECASE)
#: HDR light levels in a stream's side data, in cd/m².
_MAX_CLL = re.compile(r"MaxCLL=(\d+)")
_MASTERING_PEAK = re.compile(r"max_luminance=(\d+(?:\.\d+)?)")
#: Pixel formats with an alpha plane (by name prefix).
_ALPHA_FORMATS = re.compile(r"^(yuva|gbrap|ya\d|rgba|bgra|argb|abgr|pal8)")
#: Pixel formats whose samples are RGB (no matrix).
_RGB_FORMATS = re.compile(r"^(gbr|rgb|bgr|argb|abgr|0rgb|0bgr|x2rgb|x2bgr|pal8)")
_RATE = re.compile(r", (\d+) Hz")
_CHANNELS = re.compile(r" Hz, ([^,]+)")
_FAILED = re.compile(r"^Error opening input file (.*)\.$", re.MULTILINE)
_REASON = re.compile(r"Error opening input: (.*)$", re.MULTILINE)


@dataclass(frozen=True)
class VideoStream:
    codec: str
    #: Stored size, in pixels (before pixel aspect ratio and rotation, which ffmpeg applies as it decodes).
    width: int
    height: int
    #: Pixel format as ffmpeg names it ("yuv420p10le", "bgra"…); "" when not printed.
    pix_fmt: str = ""
    #: What the stream declares about its colour.
    colour: ClipColour = field(default_factory=ClipColour)
    #: A WebM VP8/VP9 stream with an alpha plane (``alpha_mode: 1``).
    alpha_mode: bool = False

    @property
    def has_alpha(self) -> bool:
        """The decoded frames carry transparency (by pixel format, or WebM's flag)."""
        return self.alpha_mode or bool(_ALPHA_FORMATS.match(self.pix_fmt))

    @property
    def is_rgb(self) -> bool:
        return bool(_RGB_FORMATS.match(self.pix_fmt))


@dataclass(frozen=True)
class AudioStream:
    codec: str
    sample_rate: int
    channels: int


@dataclass(frozen=True)
class MediaInfo:
    duration_s: float | None
    video: VideoStream | None
    audio: AudioStream | None


class ProbeError(Exception):
    """ffmpeg could not open ``path``."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(reason)
        self.path = path
        self.reason = reason


def input_arg(path: Path) -> str:
    """A local path as an ffmpeg input that no protocol prefix can hijack."""
    return f"file:{path}"


def probe(ffmpeg: str, paths: list[Path]) -> list[MediaInfo]:
    """Probe every path in one ffmpeg run; raise ProbeError for the first bad one."""
    if not paths:
        return []
    args = [ffmpeg, "-hide_banner", "-nostdin"]
    for path in paths:
        args += ["-i", input_arg(path)]
    result = run_capture("probe", args)
    text = result.stderr.decode("utf-8", "replace")
    failed = _FAILED.search(text)
    if failed:
        path = Path(failed.group(1).removeprefix("file:"))
        reason = _REASON.search(text)
        raise ProbeError(path, reason.group(1).strip() if reason else "cannot be opened")
    sections = _split_inputs(text)
    if len(sections) != len(paths):
        raise ProbeError(paths[len(sections)] if len(sections) < len(paths) else paths[0], "cannot be opened")
    return [_parse(section) for section in sections]


def _split_inputs(text: str) -> list[str]:
    starts = [match.start() for match in _INPUT.finditer(text)]
    return [text[start:end] for start, end in zip(starts, [*starts[1:], len(text)], strict=True)]


def _parse(section: str) -> MediaInfo:
    duration = None
    match = _DURATION.search(section)
    if match and match.group(1) is not None:
        hours, minutes, seconds = match.groups()
        duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    video = audio = None
    streams = list(_STREAM.finditer(section))
    for index, stream in enumerate(streams):
        kind, rest = stream.groups()
        codec = rest.split(" ", 1)[0].rstrip(",")
        if kind == "Video" and video is None and "(attached pic)" not in rest:
            size = _SIZE.search(rest)
            if size:
                # The lines below the stream line (metadata, side data) up to the next stream.
                block = section[stream.end() : streams[index + 1].start() if index + 1 < len(streams) else len(section)]
                video = _video(codec, int(size.group(1)), int(size.group(2)), rest, block)
        elif kind == "Audio" and audio is None:
            rate = _RATE.search(rest)
            layout = _CHANNELS.search(rest)
            if rate:
                audio = AudioStream(codec, int(rate.group(1)), _channel_count(layout.group(1) if layout else ""))
    return MediaInfo(duration, video, audio)


def _video(codec: str, width: int, height: int, line: str, block: str) -> VideoStream:
    pixels = _PIXELS.search(line)
    pix_fmt, details = (pixels.group(1), pixels.group(2) or "") if pixels else ("", "")
    colour = parse_declared(details)
    if pix_fmt.startswith("yuvj") and colour.range is None:
        colour = replace(colour, range="pc")
    peak = _MAX_CLL.search(block)
    if peak is None or float(peak.group(1)) <= 0:
        peak = _MASTERING_PEAK.search(block)
    if peak is not None and float(peak.group(1)) > 0:
        colour = replace(colour, peak_nits=float(peak.group(1)))
    return VideoStream(codec, width, height, pix_fmt, colour, bool(_ALPHA_MODE.search(block)))


def _channel_count(layout: str) -> int:
    layout = layout.strip()
    if layout == "mono":
        return 1
    match = re.match(r"(\d+) channels", layout)
    if match:
        return int(match.group(1))
    if layout == "stereo":
        return 2
    # 5.1, 7.1(wide), quad…: more than two; the renderer downmixes to stereo anyway.
    return 6 if layout else 2
