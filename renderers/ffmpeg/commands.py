"""The ffmpeg command lines: one per segment, one for the audio track, one to join.

A still segment reads the step's frame, composed by Pillow, once on stdin and
repeats it: RGB work (fades, the conversion to YUV) touches only the few frames
that fade, never the whole segment. A clip segment overlays the clip, as
:class:`~renderers.ffmpeg.pictures.ClipPicture` shows it (fitted at its display
aspect, alpha kept, BT.709 SDR), on the step's composed frame, holds the
clip's last frame as long as needed, and fades only the first and last few
frames through RGB (ffmpeg's fade to a colour works in RGB only). The join is the concat demuxer with ``-c copy``.
"""

from __future__ import annotations

from pathlib import Path

from renderers.ffmpeg import encoder
from renderers.ffmpeg.compose import Box
from renderers.ffmpeg.pictures import ClipPicture
from renderers.ffmpeg.probe import input_arg
from renderers.ffmpeg.spec import Output
from renderers.ffmpeg.timeline import Slot

#: Log level of every child: warnings and errors reach our stderr, chatter does not.
LOG_LEVEL = "warning"


def _head(ffmpeg: str) -> list[str]:
    return [ffmpeg, "-hide_banner", "-nostdin", "-y", "-loglevel", LOG_LEVEL, "-nostats", "-progress", "pipe:1"]


def _raw_rgb_input(output: Output) -> list[str]:
    return [
        "-f", "rawvideo",
        "-pix_fmt", "rgb24",
        "-video_size", f"{output.width}x{output.height}",
        "-framerate", str(output.fps),
        "-i", "pipe:0",
    ]


def frame_numbers(fps: int) -> str:
    """Timestamps that count frames exactly (``N/FRAME_RATE/TB`` is computed in
    floating point: frame 3 at 10 fps lands on 2.999… and is truncated to 2)."""
    return f"settb=1/{fps},setpts=N"


def _colour(rgb: tuple[int, int, int]) -> str:
    return "0x{:02x}{:02x}{:02x}".format(*rgb)


def still_segment(ffmpeg: str, output: Output, slot: Slot, target: Path) -> list[str]:
    """A still step: one RGB frame on stdin, repeated.

    The still is copied into the 2K+2 frames that fades touch (K = fade
    frames), faded in RGB (ffmpeg fades to a colour in RGB only), converted to
    YUV, and then its middle frame is looped: RGB work on 2K+2 frames only. The
    loop filter repeats frame ``start``, but some builds (9.0 among them)
    repeat frame ``start - 1``; frames K and K+1 are both the plain still, so
    either way the still is what repeats.
    """
    fade, frames = slot.fade_frames, slot.frames
    background = _colour(slot.step.background)
    head = min(frames, 2 * fade + 2)  # frames made before the final loop
    chain = []
    if head > 1:
        chain.append(f"loop=loop={head - 1}:size=1:start=0")
    if fade:
        chain.append(f"fade=t=in:s=0:n={fade}:color={background}")
        # fade=out leaves its first frame whole and its last at 1/n: starting one
        # frame early ends the segment on the plain background.
        chain.append(f"fade=t=out:s={head - fade - 1}:n={fade}:color={background}")
    chain.append(encoder.to_yuv_filter())
    if frames > head:
        chain.append(f"loop=loop={frames - head}:size=1:start={fade + 1}")
    chain.append(frame_numbers(output.fps))
    return [
        *_head(ffmpeg),
        *_raw_rgb_input(output),
        "-vf", ",".join(chain),
        "-frames:v", str(frames),
        "-an",
        *encoder.video_args(output),
        *encoder.DETERMINISTIC_OUTPUT,
        "-f", "mp4", str(target),
    ]


def clip_segment(
    ffmpeg: str, output: Output, slot: Slot, clip: Path, picture: ClipPicture, media_box: Box, target: Path
) -> list[str]:
    """A clip step: the clip, as :class:`ClipPicture` shows it, overlaid on the step's frame (on stdin)."""
    x0, y0, x1, y1 = media_box
    width, height = x1 - x0, y1 - y0
    frames, fade = slot.frames, slot.fade_frames
    background = _colour(slot.step.background)
    to_yuv = encoder.to_yuv_filter()
    graph = [
        f"[0:v]{to_yuv},loop=loop=-1:size=1:start=0,{frame_numbers(output.fps)}[base]",
        f"[1:v:0]setpts=PTS-STARTPTS,fps={output.fps},{picture.filters(width, height)},"
        f"tpad=stop_mode=clone:stop=-1[clip]",
        # overlay blends by the clip's alpha plane when it has one (yuva420p)
        f"[base][clip]overlay=x={x0}+({width}-w)/2:y={y0}+({height}-h)/2:eof_action=repeat,"
        f"trim=end_frame={frames}"
        + ("[v]" if not fade else ",split=3[in][body][out]"),
    ]
    if fade:
        graph += [
            f"[in]trim=end_frame={fade},format=rgb24,fade=t=in:s=0:n={fade}:color={background},{to_yuv}[fin]",
            # fade=out leaves its first frame whole and its last at 1/n: starting one
            # frame early ends the segment on the plain background, as stills do.
            f"[body]trim=start_frame={fade}:end_frame={frames - fade - 1}[fbody]",
            f"[out]trim=start_frame={frames - fade - 1},format=rgb24,"
            f"fade=t=out:s=0:n={fade}:color={background},{to_yuv}[fout]",
            f"[fin][fbody][fout]concat=n=3:v=1:a=0,{frame_numbers(output.fps)}[v]",
        ]
    return [
        *_head(ffmpeg),
        *_raw_rgb_input(output),
        *picture.input_args(),
        "-i", input_arg(clip),
        "-filter_complex", ";".join(graph),
        "-map", "[v]",
        "-frames:v", str(frames),
        "-an",
        *encoder.video_args(output),
        *encoder.DETERMINISTIC_OUTPUT,
        "-f", "mp4", str(target),
    ]


def clip_first_frame(ffmpeg: str, clip: Path, picture: ClipPicture, media_box: Box) -> list[str]:
    """The clip's first frame as its segment shows it, as a PNG on stdout (RGBA when it has alpha)."""
    width, height = media_box[2] - media_box[0], media_box[3] - media_box[1]
    to_rgb = (
        f"scale=in_color_matrix={encoder.VIDEO.colorspace}:in_range=tv:flags={encoder.SWS_FLAGS},"
        f"format={'rgba' if picture.alpha else 'rgb24'}"
    )
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error",
        *picture.input_args(),
        "-i", input_arg(clip),
        "-map", "0:v:0", "-frames:v", "1",
        "-vf", f"{picture.filters(width, height)},{to_rgb}",
        "-f", "image2pipe", "-c:v", "png", "pipe:1",
    ]


def audio_track(
    ffmpeg: str,
    source: Path,
    *,
    samples: int,
    channels: int,
    volume: float,
    fade_in_samples: int,
    fade_out_samples: int,
    target: Path,
) -> list[str]:
    """The audio, resampled, with its volume and fades, cut or padded to ``samples``."""
    chain = [f"aresample={encoder.AUDIO.sample_rate}", f"volume={volume!r}"]
    if fade_in_samples:
        chain.append(f"afade=t=in:start_sample=0:nb_samples={min(fade_in_samples, samples)}")
    chain += ["apad", f"atrim=end_sample={samples}"]
    if fade_out_samples:
        fade_out_samples = min(fade_out_samples, samples)
        chain.append(f"afade=t=out:start_sample={samples - fade_out_samples}:nb_samples={fade_out_samples}")
    return [
        *_head(ffmpeg),
        "-i", input_arg(source),
        "-filter_complex", f"[0:a:0]{','.join(chain)}[a]",
        "-map", "[a]",
        "-vn",
        *encoder.audio_args(channels),
        *encoder.DETERMINISTIC_OUTPUT,
        "-f", "mp4", str(target),
    ]


def concat_list(segments: list[Path]) -> str:
    lines = ["ffconcat version 1.0"]
    for path in segments:
        quoted = str(path).replace("'", "'\\''")
        lines.append(f"file '{quoted}'")
    return "\n".join(lines) + "\n"


def mux(ffmpeg: str, output: Output, concat_file: Path, audio: Path | None, target: Path) -> list[str]:
    args = [*_head(ffmpeg), "-f", "concat", "-safe", "0", "-i", str(concat_file)]
    if audio is not None:
        args += ["-i", input_arg(audio)]
    args += ["-map", "0:v:0"]
    if audio is not None:
        args += ["-map", "1:a:0"]
    return [
        *args,
        "-c", "copy",
        "-video_track_timescale", str(encoder.timescale(output)),
        "-movflags", "+faststart",
        *encoder.DETERMINISTIC_OUTPUT,
        "-f", "mp4", str(target),
    ]
