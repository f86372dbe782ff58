"""Encoder settings: the one place that decides how video and audio are encoded.

Every segment shares these, so segments join with the concat demuxer without
re-encoding, and they are part of every cache key (change one and old segments
are simply not found). They also make the output deterministic: a fixed
thread count (x264's output depends on it), bitexact flags, and no metadata
that varies between runs, because artifacts are content-addressed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from renderers.ffmpeg.spec import Output


@dataclass(frozen=True)
class VideoSettings:
    codec: str = "libx264"
    preset: str = "ultrafast"
    tune: str = "stillimage"
    crf: int = 23
    profile: str = "high"
    pix_fmt: str = "yuv420p"
    #: Seconds between keyframes (each segment also starts with one).
    keyframe_interval_s: int = 4
    #: x264 threads per segment; segments are encoded in parallel instead.
    threads: int = 1
    #: Colour matrix of the YUV frames, tagged in the stream.
    colorspace: str = "bt709"


@dataclass(frozen=True)
class AudioSettings:
    codec: str = "aac"
    bitrate: str = "128k"
    #: Samples per second.
    sample_rate: int = 48_000


VIDEO = VideoSettings()
AUDIO = AudioSettings()

#: swscale flags for every conversion we ask for (bitexact: the same on every CPU).
SWS_FLAGS = "bicubic+accurate_rnd+full_chroma_int+bitexact"

#: Options of every output file: nothing in it may vary between two runs.
DETERMINISTIC_OUTPUT = ["-map_metadata", "-1", "-map_chapters", "-1", "-fflags", "+bitexact"]
#: The same for the encoders (given only where an encoder runs: ffmpeg warns otherwise).
DETERMINISTIC_VIDEO = ["-flags:v", "+bitexact"]
DETERMINISTIC_AUDIO = ["-flags:a", "+bitexact"]


def settings_identity() -> dict[str, object]:
    """Everything here that affects encoded bytes, for cache keys."""
    return {"video": asdict(VIDEO), "audio": asdict(AUDIO), "sws": SWS_FLAGS}


def timescale(output: Output) -> int:
    """MP4 track timescale: 90 kHz when it counts whole frames, else fps × 1000."""
    return 90_000 if 90_000 % output.fps == 0 else output.fps * 1000


def to_yuv_filter() -> str:
    """Filter chain from RGB frames to the tagged YUV frames x264 is fed."""
    matrix = VIDEO.colorspace
    return (
        f"scale=out_color_matrix={matrix}:out_range=tv:flags={SWS_FLAGS},"
        f"format={VIDEO.pix_fmt},"
        f"setparams=colorspace={matrix}:color_primaries={matrix}:color_trc={matrix}:range=tv"
    )


def video_args(output: Output) -> list[str]:
    """Output options of a segment's video stream."""
    keyint = VIDEO.keyframe_interval_s * output.fps
    return [
        "-c:v", VIDEO.codec,
        "-preset", VIDEO.preset,
        "-tune", VIDEO.tune,
        "-crf", str(VIDEO.crf),
        "-profile:v", VIDEO.profile,
        "-pix_fmt", VIDEO.pix_fmt,
        "-threads", str(VIDEO.threads),
        "-x264-params", f"keyint={keyint}:scenecut=0:bframes=0",
        "-colorspace", VIDEO.colorspace,
        "-color_primaries", VIDEO.colorspace,
        "-color_trc", VIDEO.colorspace,
        "-color_range", "tv",
        "-video_track_timescale", str(timescale(output)),
        *DETERMINISTIC_VIDEO,
    ]


def audio_args(channels: int) -> list[str]:
    return [
        "-c:a", AUDIO.codec,
        "-b:a", AUDIO.bitrate,
        "-ar", str(AUDIO.sample_rate),
        "-ac", str(channels),
        *DETERMINISTIC_AUDIO,
    ]
