"""A corpus of the inputs people upload every day, made at test time, each with what a correct render shows.

Every file is made here with Pillow and ffmpeg — nothing is downloaded — in a
few seconds: phone clips with rotation metadata, photos with EXIF orientation,
CMYK JPEGs, palette/LA/RGBA transparency, animated GIF and WebP (as an image:
the first frame; as a clip: every frame at its time), odd sizes, panoramas,
VFR, HEVC 10-bit and yuv444 clips, mono 8 kHz, 5.1 and MP3-with-cover-art
audio, audio longer and shorter than the chapter, truncated (an image, a clip
cut in half, a clip cut inside its first frame) and empty files, a
108-megapixel image, a stream-copied cut, a chapter of 100 steps of 100 ms.

Each :class:`Input` says what a correct render of it must show, as values read
back from the video, ``report.json`` or the renderer's exit: colours sampled
at a time and place of the picture *as displayed* (:class:`Sample`), sound
and silence (:class:`Sound`), a warning code, or the words of the error that
names it. Pictures are flat colours with large regions (left/right or
top/bottom halves), so 4:2:0 chroma and x264 at small sizes keep them within
:data:`TOLERANCE`.
"""

from __future__ import annotations

import struct
import subprocess
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

Colour = tuple[int, int, int]

RED: Colour = (220, 40, 40)
GREEN: Colour = (40, 190, 60)
BLUE: Colour = (40, 60, 220)
YELLOW: Colour = (230, 210, 40)
GREY: Colour = (200, 200, 200)
#: The background of every corpus step: none of the colours above.
BACKGROUND: Colour = (32, 64, 96)
#: RGB distance tolerated between an expected and a decoded colour (per channel).
TOLERANCE = 16

#: Clips' frame rate, frames per second.
CLIP_FPS = 10


@dataclass(frozen=True)
class Sample:
    """A colour the render must show ``t_s`` seconds into the step, at (``u``, ``v``) of the picture as
    displayed (0..1 across and down it; outside 0..1, beside it, where the step's background shows:
    ``rgb`` None)."""

    t_s: float
    u: float
    v: float
    rgb: Colour | None
    tolerance: int = TOLERANCE


@dataclass(frozen=True)
class Picture:
    """Where and what the picture shows: its size as displayed (its aspect decides where it sits once
    letterboxed) and colours sampled in and around it."""

    displayed: tuple[int, int]
    samples: tuple[Sample, ...]


@dataclass(frozen=True)
class Sound:
    """Spans of the chapter, in seconds, that must be audible and that must be silent."""

    audible: tuple[tuple[float, float], ...]
    silent: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class Input:
    """One real-world input: its file (``uri``, relative to the corpus folder) and what a render shows.

    ``type`` is the asset type it is used as; the step (or, for audio, the
    chapter) lasts ``duration_ms``. Exactly what is set below is checked.
    """

    name: str
    type: str
    uri: str
    duration_ms: int = 2000
    picture: Picture | None = None
    sound: Sound | None = None
    #: The ``code`` of the warning ``report.json`` must carry for the step.
    warning: str | None = None
    #: Words of the error naming the asset (the render exits 2).
    refusal: str | None = None
    #: Extra checks the test applies: "no decode" (refused from the header alone: little memory and time).
    notes: tuple[str, ...] = field(default=())


# -- making files ----------------------------------------------------------------------


def _ffmpeg(ffmpeg: str, *args: str) -> None:
    subprocess.run([ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args], check=True, timeout=120)


def halves(
    size: tuple[int, int], first: tuple[int, ...], second: tuple[int, ...], *, across: bool = True, mode: str = "RGB"
) -> Image.Image:
    """An image whose left (``across``) or top half is ``first``, the rest ``second`` (colours in ``mode``)."""
    image = Image.new(mode, size, second)
    width, height = size
    image.paste(first, (0, 0, width // 2, height) if across else (0, 0, width, height // 2))
    return image


#: Tags and conversion of every clip made here: BT.709, limited range (what phones and cameras write).
BT709 = ["-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709"]


def _encode_still(ffmpeg: str, card: Path, target: Path, seconds: float, pix_fmt: str, *codec: str) -> Path:
    """A clip of ``card`` (a PNG) held for ``seconds``, converted with the BT.709 matrix and tagged so."""
    _ffmpeg(
        ffmpeg, "-loop", "1", "-framerate", str(CLIP_FPS), "-i", str(card), "-t", f"{seconds}",
        "-vf", f"scale=out_color_matrix=bt709:out_range=tv,format={pix_fmt}", *codec, *BT709, str(target),
    )  # fmt: skip
    return target


def _frames_clip(ffmpeg: str, target: Path, seconds: float, *extra: str, keyint: int = CLIP_FPS,
                 noisy: bool = False) -> Path:  # fmt: skip
    """A clip whose frame n is flat (10 + 12n, 64, 128) (n < 20): its time can be read from its red.

    ``noisy``: its left quarter is noise, so every frame takes many bytes (a cut falls between frames).
    """
    red, green = "min(10+12*N,255)", "64"
    if noisy:
        red, green = f"if(lt(X,W/4),random(1)*255,{red})", "if(lt(X,W/4),random(2)*255,64)"
    source = (
        f"color=c=black:size=160x90:rate={CLIP_FPS}:duration={seconds},format=gbrp,"
        f"geq=r='{red}':g='{green}':b=128,scale=out_color_matrix=bt709:out_range=tv,format=yuv420p"
    )
    gop = f"keyint={keyint}:min-keyint={keyint}:scenecut=0:bframes=0"
    _ffmpeg(ffmpeg, "-f", "lavfi", "-i", source, "-c:v", "libx264", "-preset", "ultrafast",
            "-x264-params", gop, *BT709, *extra, str(target))  # fmt: skip
    return target


def frame_red(n: float) -> int:
    """The red of :func:`_frames_clip`'s frame ``n``."""
    return min(255, round(10 + 12 * n))


def _tone(ffmpeg: str, target: Path, seconds: float, *args: str) -> Path:
    _ffmpeg(ffmpeg, "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", *args, str(target))
    return target


def _animation(frames: list[Colour], size: tuple[int, int]) -> list[Image.Image]:
    return [Image.new("RGB", size, colour) for colour in frames]


# -- the corpus ----------------------------------------------------------------------------


def rotated_clip(folder: Path, ffmpeg: str) -> Input:
    """A phone clip stored landscape with a display matrix turning it 90° counter-clockwise."""
    card = folder / "rotated-card.png"
    halves((160, 80), RED, BLUE).save(card)
    stored = _encode_still(ffmpeg, card, folder / "rotated-stored.mp4", 1.0, "yuv420p", "-c:v", "libx264")
    _ffmpeg(ffmpeg, "-display_rotation:v:0", "90", "-i", str(stored), "-c", "copy", str(folder / "rotated.mp4"))
    # counter-clockwise: the right half (blue) on top, the left (red) below; portrait
    return Input("rotated-clip", "video", "rotated.mp4", 1500, picture=Picture(
        (80, 160), (Sample(0.5, 0.5, 0.25, BLUE), Sample(0.5, 0.5, 0.75, RED), Sample(0.5, -0.4, 0.5, None)),
    ))  # fmt: skip


def exif_orientation(folder: Path, ffmpeg: str) -> Input:
    """A photo stored landscape whose EXIF orientation 6 says: turn it 90° clockwise to display."""
    exif = Image.Exif()
    exif[0x0112] = 6
    halves((160, 80), RED, BLUE).save(folder / "exif.jpg", quality=95, exif=exif.tobytes())
    # clockwise: the left half (red) on top
    return Input("exif-orientation", "image", "exif.jpg", 1000, picture=Picture(
        (80, 160), (Sample(0.5, 0.5, 0.25, RED), Sample(0.5, 0.5, 0.75, BLUE), Sample(0.5, 1.4, 0.5, None)),
    ))  # fmt: skip


def cmyk_jpeg(folder: Path, ffmpeg: str) -> Input:
    """A CMYK JPEG (no profile): pure magenta+yellow is red, pure cyan is cyan."""
    halves((160, 90), (0, 255, 255, 0), (255, 0, 0, 0), mode="CMYK").save(folder / "cmyk.jpg", quality=95)
    return Input("cmyk-jpeg", "image", "cmyk.jpg", 1000, picture=Picture(
        (160, 90), (Sample(0.5, 0.25, 0.5, (255, 0, 0), 24), Sample(0.5, 0.75, 0.5, (0, 255, 255), 24)),
    ))  # fmt: skip


def palette_png(folder: Path, ffmpeg: str) -> Input:
    """A palette PNG whose right half is the transparent index: the background shows there."""
    image = Image.new("P", (160, 90), 0)
    image.putpalette([0, 0, 0, *GREEN] + [0, 0, 0] * 254)
    image.paste(1, (0, 0, 80, 90))
    image.save(folder / "palette.png", transparency=0)
    return Input("palette-png", "image", "palette.png", 1000, picture=Picture(
        (160, 90), (Sample(0.5, 0.25, 0.5, GREEN), Sample(0.5, 0.75, 0.5, None)),
    ))  # fmt: skip


def la_png(folder: Path, ffmpeg: str) -> Input:
    """A grey + alpha PNG: opaque light grey on the left, transparent on the right."""
    image = Image.new("LA", (160, 90), (0, 0))
    image.paste((200, 255), (0, 0, 80, 90))
    image.save(folder / "la.png")
    return Input("la-png", "image", "la.png", 1000, picture=Picture(
        (160, 90), (Sample(0.5, 0.25, 0.5, GREY), Sample(0.5, 0.75, 0.5, None)),
    ))  # fmt: skip


def rgba_png(folder: Path, ffmpeg: str) -> Input:
    """An RGBA PNG: opaque yellow on the left, red at half opacity on the right (blended over the background)."""
    image = Image.new("RGBA", (160, 90), (*RED, 128))
    image.paste((*YELLOW, 255), (0, 0, 80, 90))
    image.save(folder / "rgba.png")
    r, g, b = (round(c * 128 / 255 + under * (1 - 128 / 255)) for c, under in zip(RED, BACKGROUND, strict=True))
    return Input("rgba-png", "image", "rgba.png", 1000, picture=Picture(
        (160, 90), (Sample(0.5, 0.25, 0.5, YELLOW), Sample(0.5, 0.75, 0.5, (r, g, b))),
    ))  # fmt: skip


#: Frames of the animations, each 500 ms.
ANIMATION = [RED, GREEN, BLUE]
ANIMATION_FRAME_S = 0.5


def _animated(folder: Path, name: str) -> Path:
    path = folder / name
    frames = _animation(ANIMATION, (160, 90))
    options: dict[str, Any] = {"lossless": True} if name.endswith(".webp") else {}
    duration_ms = int(ANIMATION_FRAME_S * 1000)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=duration_ms, loop=0, **options)
    return path


def _still_of_first_frame(name: str, uri: str) -> Input:
    """An animation used as an image shows its first frame, all along."""
    return Input(name, "image", uri, 2000, picture=Picture(
        (160, 90), (Sample(0.4, 0.5, 0.5, ANIMATION[0]), Sample(1.6, 0.5, 0.5, ANIMATION[0])),
    ))  # fmt: skip


def _animation_playing(name: str, uri: str) -> Input:
    """An animation used as a clip plays each frame at its time, then holds the last."""
    return Input(name, "video", uri, 2000, picture=Picture(
        (160, 90),
        (Sample(0.3, 0.5, 0.5, ANIMATION[0]), Sample(0.7, 0.5, 0.5, ANIMATION[1]),
         Sample(1.2, 0.5, 0.5, ANIMATION[2]), Sample(1.6, 0.5, 0.5, ANIMATION[2])),
    ))  # fmt: skip


def gif_image(folder: Path, ffmpeg: str) -> Input:
    _animated(folder, "animated.gif")
    return _still_of_first_frame("gif-image", "animated.gif")


def gif_clip(folder: Path, ffmpeg: str) -> Input:
    _animated(folder, "animated-clip.gif")
    return _animation_playing("gif-clip", "animated-clip.gif")


def webp_image(folder: Path, ffmpeg: str) -> Input:
    _animated(folder, "animated.webp")
    return _still_of_first_frame("webp-image", "animated.webp")


def webp_clip(folder: Path, ffmpeg: str) -> Input:
    _animated(folder, "animated-clip.webp")
    return _animation_playing("webp-clip", "animated-clip.webp")


def odd_size(folder: Path, ffmpeg: str) -> Input:
    """333x101: odd on both sides; letterboxed at its own aspect."""
    halves((333, 101), GREEN, BLUE).save(folder / "odd.png")
    return Input("odd-size", "image", "odd.png", 1000, picture=Picture(
        (333, 101), (Sample(0.5, 0.25, 0.5, GREEN), Sample(0.5, 0.75, 0.5, BLUE), Sample(0.5, 0.5, -0.3, None)),
    ))  # fmt: skip


def panorama_wide(folder: Path, ffmpeg: str) -> Input:
    """A 32:1 panorama: a thin band across the frame."""
    halves((3200, 100), RED, BLUE).save(folder / "panorama-32x1.png")
    return Input("panorama-32x1", "image", "panorama-32x1.png", 1000, picture=Picture(
        (3200, 100),
        (Sample(0.5, 0.25, 0.5, RED, 24), Sample(0.5, 0.75, 0.5, BLUE, 24), Sample(0.5, 0.5, -3.0, None)),
    ))  # fmt: skip


def panorama_tall(folder: Path, ffmpeg: str) -> Input:
    """A 1:30 panorama: a thin column down the frame."""
    halves((60, 1800), GREEN, YELLOW, across=False).save(folder / "panorama-1x30.png")
    return Input("panorama-1x30", "image", "panorama-1x30.png", 1000, picture=Picture(
        (60, 1800),
        (Sample(0.5, 0.5, 0.25, GREEN, 32), Sample(0.5, 0.5, 0.75, YELLOW, 32), Sample(0.5, -4.0, 0.5, None)),
    ))  # fmt: skip


def vfr_clip(folder: Path, ffmpeg: str) -> Input:
    """Variable frame rate: red at 5 fps for 0.8 s, green at 25 fps for 0.4 s, blue at 2.5 fps for 0.8 s."""
    graph = ";".join([
        f"color=c=0x{RED[0]:02x}{RED[1]:02x}{RED[2]:02x}:size=160x90:rate=5:duration=0.8[a]",
        f"color=c=0x{GREEN[0]:02x}{GREEN[1]:02x}{GREEN[2]:02x}:size=160x90:rate=25:duration=0.4[b]",
        f"color=c=0x{BLUE[0]:02x}{BLUE[1]:02x}{BLUE[2]:02x}:size=160x90:rate=2.5:duration=0.8[c]",
        "[a][b][c]concat=n=3,scale=out_color_matrix=bt709:out_range=tv,format=yuv420p[v]",
    ])  # fmt: skip
    _ffmpeg(ffmpeg, "-filter_complex", graph, "-map", "[v]", "-fps_mode", "passthrough", "-enc_time_base", "1/1000",
            "-c:v", "libx264", "-preset", "ultrafast", *BT709, str(folder / "vfr.mp4"))  # fmt: skip
    return Input("vfr-clip", "video", "vfr.mp4", 2000, picture=Picture(
        (160, 90),
        (Sample(0.4, 0.5, 0.5, RED), Sample(1.0, 0.5, 0.5, GREEN), Sample(1.5, 0.5, 0.5, BLUE)),
    ))  # fmt: skip


def hevc_10bit(folder: Path, ffmpeg: str) -> Input:
    card = folder / "hevc-card.png"
    halves((160, 90), RED, BLUE).save(card)
    x265 = ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error", "-tag:v", "hvc1"]
    _encode_still(ffmpeg, card, folder / "hevc10.mp4", 1.0, "yuv420p10le", *x265)
    return Input("hevc-10bit", "video", "hevc10.mp4", 1000, picture=Picture(
        (160, 90), (Sample(0.5, 0.25, 0.5, RED), Sample(0.5, 0.75, 0.5, BLUE)),
    ))  # fmt: skip


def yuv444_h264(folder: Path, ffmpeg: str) -> Input:
    card = folder / "yuv444-card.png"
    halves((160, 90), YELLOW, BLUE).save(card)
    _encode_still(ffmpeg, card, folder / "yuv444.mp4", 1.0, "yuv444p", "-c:v", "libx264", "-preset", "ultrafast")
    return Input("yuv444-h264", "video", "yuv444.mp4", 1000, picture=Picture(
        (160, 90), (Sample(0.5, 0.25, 0.5, YELLOW), Sample(0.5, 0.75, 0.5, BLUE)),
    ))  # fmt: skip


#: Where the stream-copied cut starts in its source, seconds: between keyframes (the only one is at 0).
CUT_START_S = 0.55


def stream_copied_cut(folder: Path, ffmpeg: str) -> Input:
    """``ffmpeg -ss 0.55 -i src.mp4 -t 1 -c copy``: the cut starts on no keyframe, so its first packets
    are only there to decode from (an edit list hides them): it must show source frame 5.5 on, not 0."""
    source = _frames_clip(ffmpeg, folder / "cut-source.mp4", 2.0, keyint=2 * CLIP_FPS)
    _ffmpeg(ffmpeg, "-ss", f"{CUT_START_S}", "-i", str(source), "-t", "1.0", "-c", "copy", str(folder / "cut.mp4"))
    first = CUT_START_S * CLIP_FPS

    def at(t_s: float) -> Sample:
        return Sample(t_s, 0.5, 0.5, (frame_red(first + t_s * CLIP_FPS), 64, 128), 6 + TOLERANCE)  # ±half a frame

    return Input("stream-copied-cut", "video", "cut.mp4", 1500, picture=Picture((160, 90), (at(0.3), at(0.7))))


def truncated_clip(folder: Path, ffmpeg: str) -> Input:
    """A faststart MP4 (header first) cut in half: its readable half shows, with a warning."""
    path = _frames_clip(ffmpeg, folder / "truncated-clip.mp4", 2.0, "-movflags", "+faststart", keyint=1, noisy=True)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return Input("truncated-clip", "video", "truncated-clip.mp4", 2000, warning="truncated_asset", picture=Picture(
        (160, 90), (Sample(0.3, 0.5, 0.5, (frame_red(3), 64, 128)),),
    ))  # fmt: skip


# -- audio (each the narration of a chapter of its own) ------------------------------------------


def mono_8k(folder: Path, ffmpeg: str) -> Input:
    _tone(ffmpeg, folder / "mono-8k.wav", 2.0, "-ac", "1", "-ar", "8000")
    return Input("mono-8k", "audio", "mono-8k.wav", 2000, sound=Sound(((0.2, 1.8),)))


def surround_51(folder: Path, ffmpeg: str) -> Input:
    """5.1 with the tone in the centre channel only: a downmix that drops the centre is silent."""
    _tone(ffmpeg, folder / "surround.m4a", 2.0, "-af", "pan=5.1|FC=c0", "-c:a", "aac")
    return Input("surround-5.1", "audio", "surround.m4a", 2000, sound=Sound(((0.2, 1.8),)))


def mp3_cover_art(folder: Path, ffmpeg: str) -> Input:
    """An MP3 with its cover picture (an attached picture stream, not a video)."""
    halves((64, 64), RED, BLUE).save(folder / "cover-art.png")
    tone = _tone(ffmpeg, folder / "cover-tone.wav", 2.0)
    _ffmpeg(ffmpeg, "-i", str(tone), "-i", str(folder / "cover-art.png"), "-map", "0:a", "-map", "1:v",
            "-c:a", "libmp3lame", "-c:v", "png", "-disposition:v", "attached_pic", "-id3v2_version", "3",
            str(folder / "cover-art.mp3"))  # fmt: skip
    return Input("mp3-cover-art", "audio", "cover-art.mp3", 2000, sound=Sound(((0.2, 1.8),)))


def audio_longer(folder: Path, ffmpeg: str) -> Input:
    """A 5 s narration for a 2 s chapter: cut at the chapter's end (the video stays 2 s)."""
    _tone(ffmpeg, folder / "long.wav", 5.0)
    return Input("audio-longer", "audio", "long.wav", 2000, sound=Sound(((0.2, 1.9),)))


def audio_shorter(folder: Path, ffmpeg: str) -> Input:
    """A 0.8 s narration for a 2 s chapter: silence after it, to the chapter's end."""
    _tone(ffmpeg, folder / "short.wav", 0.8)
    return Input("audio-shorter", "audio", "short.wav", 2000, sound=Sound(((0.1, 0.7),), ((1.0, 1.95),)))


# -- refused (each a dry run of its own) -----------------------------------------------------------------


def truncated_image(folder: Path, ffmpeg: str) -> Input:
    path = folder / "truncated.png"
    Image.effect_noise((200, 200), 60).convert("RGB").save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return Input("truncated-image", "image", "truncated.png", refusal="not a decodable image")


def mdat_offset(data: bytes) -> int:
    """Where the media data of an MP4 starts (after its ``mdat`` box header)."""
    offset = 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if kind == b"mdat":
            return offset + 8
        if size < 8:
            break
        offset += size
    raise ValueError("no mdat box")


def unreadable_clip(folder: Path, ffmpeg: str) -> Input:
    """A faststart MP4 cut inside its first frame: its header whole (it probes fine), not one frame readable."""
    path = _frames_clip(ffmpeg, folder / "unreadable.mp4", 2.0, "-movflags", "+faststart")
    data = path.read_bytes()
    path.write_bytes(data[: mdat_offset(data) + 16])
    return Input("unreadable-clip", "video", "unreadable.mp4", refusal="none of its frames can be read")


def empty_file(folder: Path, ffmpeg: str) -> Input:
    (folder / "empty.mp4").write_bytes(b"")
    return Input("empty-file", "video", "empty.mp4", refusal="the file is empty")


#: 12000 x 9000 = 108 megapixels: what a phone's "108 MP" mode writes.
BOMB_SIZE = (12_000, 9_000)


def megapixel_108(folder: Path, ffmpeg: str) -> Input:
    """A whole 12000x9000 grey PNG (500 KB; 324 MB decoded, seconds to decode): refused from its header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    width, height = BOMB_SIZE
    row = b"\x00" + b"\x80" * (width * 3)  # filter type 0, then mid-grey RGB
    # Every row compressed alike: after a full flush the compressor's output for the same row repeats,
    # so one compressed row stands for all of them (compressing 324 MB would take seconds).
    compressor = zlib.compressobj(9)
    first = compressor.compress(row) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeated = compressor.compress(row) + compressor.flush(zlib.Z_FULL_FLUSH)
    end = compressor.flush()[:-4]  # its checksum covers two rows; the stream's covers them all
    checksum = 1
    for _ in range(height):
        checksum = zlib.adler32(row, checksum)
    body = first + repeated * (height - 1) + end + struct.pack(">I", checksum)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    (folder / "108mp.png").write_bytes(png + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return Input("108-megapixels", "image", "108mp.png", refusal="image exceeds", notes=("no decode",))


PICTURES: tuple[Callable[[Path, str], Input], ...] = (
    rotated_clip, exif_orientation, cmyk_jpeg, palette_png, la_png, rgba_png, gif_image, gif_clip, webp_image,
    webp_clip, odd_size, panorama_wide, panorama_tall, vfr_clip, hevc_10bit, yuv444_h264, stream_copied_cut,
    truncated_clip,
)  # fmt: skip
AUDIO: tuple[Callable[[Path, str], Input], ...] = (mono_8k, surround_51, mp3_cover_art, audio_longer, audio_shorter)
REFUSED: tuple[Callable[[Path, str], Input], ...] = (truncated_image, unreadable_clip, empty_file, megapixel_108)

#: The chapter of many short steps: 100 steps of 100 ms, backgrounds cycling through these.
SHORT_STEPS = 100
SHORT_STEP_MS = 100
SHORT_STEP_BACKGROUNDS: tuple[Colour, ...] = (RED, GREEN, BLUE, YELLOW, BACKGROUND)


def make_corpus(folder: Path, ffmpeg: str, *, parallel: int = 3) -> list[Input]:
    """Make every input in ``folder`` (several ffmpeg runs at once); return them, pictures, audio, refused."""
    folder.mkdir(parents=True, exist_ok=True)
    makers = (*PICTURES, *AUDIO, *REFUSED)
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        return list(pool.map(lambda make: make(folder, ffmpeg), makers))
