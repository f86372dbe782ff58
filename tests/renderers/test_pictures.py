"""Every picture as it is displayed: aspect, alpha, bit depth and colour, read back.

Each test makes its input on the spot (Pillow and ffmpeg, nothing downloaded),
renders it with ``python -m renderers.ffmpeg`` and reads back both the video
(a frame in the middle of the step) and ``poster.jpg``. Outputs are 320x180 at
10 fps with 1 s steps and no title or text, so the media box is the whole
frame inside the margin.
"""

from __future__ import annotations

import math
import re
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageDraw
from test_ffmpeg import asset, close, decode, make_spec, render

from renderers.ffmpeg import cache, colour, images, plan, probe
from renderers.ffmpeg.assets import ResolvedAsset
from renderers.ffmpeg.colour import ClipColour
from renderers.ffmpeg.compose import plan_layout
from renderers.ffmpeg.pictures import ClipPicture
from renderers.ffmpeg.probe import MediaInfo, VideoStream
from renderers.ffmpeg.spec import parse_spec
from renderers.ffmpeg.timeline import layout_timeline

WIDTH, HEIGHT, FPS = 320, 180, 10
#: The step's background: a colour no input uses.
BACKGROUND = (40, 90, 160)
#: A circle (and a card) must keep its aspect within this share.
ROUNDNESS = 0.10
#: RGB distance tolerated on flat patches after x264 (4:2:0, CRF 23) and JPEG.
COLOUR_TOLERANCE = 10


def run(ffmpeg: str, *args: str) -> None:
    subprocess.run([ffmpeg, "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


@dataclass
class Picture:
    """What a render shows: the middle frame of its one step, and the poster."""

    frame: Image.Image
    poster: Image.Image
    plan: dict[str, Any]
    video_stream: str


def show(tmp_path: Path, ffmpeg: str, kind: str, path: Path) -> Picture:
    """Render ``path`` as the only step's asset (1 s on BACKGROUND) and read it back."""
    spec = make_spec(
        [{"id": "pic", "durationMs": 1000, "asset": "pic", "background": "#{:02x}{:02x}{:02x}".format(*BACKGROUND)}],
        {"pic": asset(kind, path)}, width=WIDTH, height=HEIGHT, fps=FPS,
    )
    result = render(spec, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    video = tmp_path / "out" / "video.mp4"
    frames = decode(ffmpeg, video, WIDTH, HEIGHT)
    assert len(frames) == FPS
    header = subprocess.run([ffmpeg, "-hide_banner", "-i", str(video)], capture_output=True, text=True).stderr
    stream = next(line for line in header.splitlines() if "Video:" in line)
    with Image.open(tmp_path / "out" / "poster.jpg") as poster:
        poster.load()
        return Picture(Image.frombytes("RGB", (WIDTH, HEIGHT), frames[FPS // 2]), poster.convert("RGB"),
                       result.json("plan.json"), stream)


def bounding_box(mask: Image.Image) -> tuple[int, int, int, int]:
    """Bounding box (x0, y0, x1, y1), exclusive ends, of a mask's non-zero pixels."""
    box = mask.getbbox()
    assert box is not None, "no pixel matched"
    return box


def channel_min(image: Image.Image) -> Image.Image:
    red, green, blue = image.split()
    return ImageChops.darker(ImageChops.darker(red, green), blue)


def channel_max(image: Image.Image) -> Image.Image:
    red, green, blue = image.split()
    return ImageChops.lighter(ImageChops.lighter(red, green), blue)


def aspect(box: tuple[int, int, int, int]) -> float:
    return (box[2] - box[0]) / (box[3] - box[1])


def media_place(plan: dict[str, Any], size: tuple[float, float]) -> tuple[float, float, float]:
    """Where media of display ``size`` lands in the step's media box: (x, y, scale)."""
    x0, y0, x1, y1 = plan["timeline"][0]["mediaBox"]
    scale = min((x1 - x0) / size[0], (y1 - y0) / size[1])
    return x0 + ((x1 - x0) - size[0] * scale) / 2, y0 + ((y1 - y0) - size[1] * scale) / 2, scale


# -- pixel aspect ratio and rotation ----------------------------------------------

CARD = (20, 20, 20)
DISC = (240, 240, 240)


def card(path: Path) -> Path:
    """A 1024x576 (16:9) card with a circle in the middle."""
    image = Image.new("RGB", (1024, 576), CARD)
    ImageDraw.Draw(image).ellipse((312, 88, 712, 488), fill=DISC)
    image.save(path)
    return path


def assert_round_on_a_card(image: Image.Image, card_aspect: float) -> None:
    disc = channel_min(image).point(lambda v: 255 if v > 160 else 0)  # the white circle
    dark = channel_max(image).point(lambda v: 255 if v <= 44 else 0)  # the card around it
    circle, shown = bounding_box(disc), bounding_box(ImageChops.lighter(disc, dark))
    assert aspect(circle) == pytest.approx(1.0, rel=ROUNDNESS), circle
    assert aspect(shown) == pytest.approx(card_aspect, rel=ROUNDNESS), shown


@pytest.mark.parametrize("rotation", [0, 90], ids=["upright", "rotated"])
def test_anamorphic_clip_is_shown_at_its_display_aspect(tmp_path: Path, ffmpeg: str, rotation: int) -> None:
    # Given 720x576 storage with SAR 64:45 (16:9 displayed), optionally turned by its display matrix
    stored = tmp_path / "stored.mp4"
    run(ffmpeg, "-loop", "1", "-i", str(card(tmp_path / "card.png")), "-t", "1", "-r", "10",
        "-vf", "scale=720:576,setsar=64/45", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        str(stored))
    clip = tmp_path / "anamorphic.mp4"
    run(ffmpeg, "-display_rotation:v:0", str(rotation), "-i", str(stored), "-c", "copy", str(clip))

    shown = show(tmp_path, ffmpeg, "video", clip)

    # Then the circle is round and the card 16:9 (9:16 turned), in the video and the poster
    card_aspect = 16 / 9 if rotation == 0 else 9 / 16
    assert_round_on_a_card(shown.frame, card_aspect)
    assert_round_on_a_card(shown.poster, card_aspect)


@pytest.mark.parametrize("suffix", ["png", "jpg"])
def test_anamorphic_image_is_shown_at_its_display_aspect(tmp_path: Path, ffmpeg: str, suffix: str) -> None:
    # Given a frame grab of an anamorphic clip: 720x576, its SAR 64:45 in pHYs (PNG) or JFIF (JPEG)
    image = tmp_path / f"anamorphic.{suffix}"
    run(ffmpeg, "-i", str(card(tmp_path / "card.png")), "-vf", "scale=720:576,setsar=64/45",
        "-frames:v", "1", "-q:v", "2", "-update", "1", str(image))

    shown = show(tmp_path, ffmpeg, "image", image)

    assert_round_on_a_card(shown.frame, 16 / 9)
    assert_round_on_a_card(shown.poster, 16 / 9)


# -- alpha in clips ----------------------------------------------------------------

RED = (230, 40, 40)
ALPHA_SIZE = (160, 120)


def disc_frames(folder: Path) -> list[Image.Image]:
    """Four RGBA frames of a red disc moving right on a transparent background (f1.png…)."""
    frames = []
    for index in range(4):
        frame = Image.new("RGBA", ALPHA_SIZE, (0, 0, 0, 0))
        ImageDraw.Draw(frame).ellipse((40 + 5 * index, 20, 120 + 5 * index, 100), fill=(*RED, 255))
        frame.save(folder / f"f{index + 1}.png")
        frames.append(frame)
    return frames


def alpha_clip(folder: Path, ffmpeg: str, kind: str) -> Path:
    frames = disc_frames(folder)
    if kind == "gif":
        path = folder / "disc.gif"
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=250, loop=0, disposal=2)
    elif kind == "webp":
        path = folder / "disc.webp"
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=250, loop=0, lossless=True)
    elif kind == "prores":
        path = folder / "overlay.mov"
        run(ffmpeg, "-framerate", "4", "-i", str(folder / "f%d.png"), "-c:v", "prores_ks", "-profile:v", "4444",
            "-pix_fmt", "yuva444p10le", str(path))
    else:  # WebM with alpha_mode=1: ffmpeg's native vp8/vp9 decoders drop the alpha plane
        path = folder / f"overlay-{kind}.webm"
        encoder = "libvpx-vp9" if kind == "vp9" else "libvpx"
        run(ffmpeg, "-framerate", "4", "-i", str(folder / "f%d.png"), "-c:v", encoder, "-pix_fmt", "yuva420p",
            "-auto-alt-ref", "0", "-b:v", "1M", str(path))
    return path


@pytest.mark.parametrize("kind", ["gif", "webp", "prores", "vp9", "vp8"])
def test_transparent_parts_of_a_clip_show_the_background(tmp_path: Path, ffmpeg: str, kind: str) -> None:
    clip = alpha_clip(tmp_path, ffmpeg, kind)

    shown = show(tmp_path, ffmpeg, "video", clip)

    x, y, scale = media_place(shown.plan, ALPHA_SIZE)
    for name, image in (("video", shown.frame), ("poster", shown.poster)):
        for sx, sy in ((8, 60), (150, 8), (20, 110)):  # transparent in every frame
            seen = image.getpixel((round(x + sx * scale), round(y + sy * scale)))
            assert close(seen, BACKGROUND, COLOUR_TOLERANCE), (name, (sx, sy), seen)
        seen = image.getpixel((round(x + 85 * scale), round(y + 60 * scale)))  # inside the disc in every frame
        assert close(seen, RED, COLOUR_TOLERANCE), (name, seen)


# -- high bit depth ----------------------------------------------------------------

GRADIENT_SIZE = (256, 64)


def gradient(path: Path) -> Path:
    """Black at the left to white at the right, one level per column."""
    Image.linear_gradient("L").rotate(90, expand=True).resize(GRADIENT_SIZE).save(path)
    return path


def deep_image(folder: Path, ffmpeg: str, kind: str) -> Path:
    source = gradient(folder / "gradient8.png")
    if kind == "float.tif":  # Pillow's "F": 0.0 black .. 1.0 white
        path = folder / kind
        with Image.open(source) as image:
            image.convert("F").point(lambda v: v / 255).save(path)
        return path
    if kind == "int32.tif":  # Pillow's "I": signed 32-bit samples, white at 2**31 - 1
        path = folder / kind
        with Image.open(source) as image:
            image.convert("I").point(lambda v: v * ((2**31 - 1) // 255)).save(path)
        return path
    pix_fmt, suffix = kind.split(".")
    path = folder / f"{pix_fmt}.{suffix}"
    run(ffmpeg, "-i", str(source), "-pix_fmt", pix_fmt, str(path))
    return path


@pytest.mark.parametrize("kind", ["gray16be.png", "gray16le.tif", "rgb48be.png", "rgb48le.tif", "int32.tif",
                                  "float.tif"])
def test_high_bit_depth_images_keep_their_gradient(tmp_path: Path, ffmpeg: str, kind: str) -> None:
    image = deep_image(tmp_path, ffmpeg, kind)

    shown = show(tmp_path, ffmpeg, "image", image)

    x, y, scale = media_place(shown.plan, GRADIENT_SIZE)
    for name, picture in (("video", shown.frame), ("poster", shown.poster)):
        for level in (16, 64, 128, 192, 240):  # the source's column = its level
            seen = picture.getpixel((round(x + (level + 0.5) * scale), round(y + 32 * scale)))
            assert close(seen, (level, level, level), COLOUR_TOLERANCE), (name, level, seen)


# -- colour ------------------------------------------------------------------------

#: BT.709 (sRGB-coded) colours of the test card's patches, left to right, on mid grey.
PATCHES = [(200, 50, 50), (50, 160, 60), (40, 60, 190), (220, 170, 130), (235, 235, 235), (30, 30, 30)]
GREY = (128, 128, 128)
PATCH_CARD = (320, 180)

#: HDR reference white (BT.2408), in cd/m²: SDR white is placed here, and shown as SDR white.
REFERENCE_WHITE_NITS = 203
#: Peak the tone curve assumes without metadata (HLG's nominal display peak), in cd/m².
ASSUMED_PEAK_NITS = 1000
#: Möbius tone curve: linear up to this share of reference white, then rolled off to the peak.
TONE_KNEE = 0.6

#: name: (zscale output options, ffmpeg tags (primaries, trc, matrix), pixel format, encoder)
COLOUR_SPACES = {
    "bt601": ("p=smpte170m:t=smpte170m:m=smpte170m", ("smpte170m", "smpte170m", "smpte170m"), "yuv420p", "libx264"),
    "bt709": ("p=bt709:t=bt709:m=bt709", ("bt709", "bt709", "bt709"), "yuv420p", "libx264"),
    "bt2020": ("p=bt2020:t=bt2020-10:m=bt2020nc", ("bt2020", "bt2020-10", "bt2020nc"), "yuv420p10le", "libx265"),
    "hlg": ("p=bt2020:t=arib-std-b67:m=bt2020nc", ("bt2020", "arib-std-b67", "bt2020nc"), "yuv420p10le", "libx265"),
    "pq": ("p=bt2020:t=smpte2084:m=bt2020nc", ("bt2020", "smpte2084", "bt2020nc"), "yuv420p10le", "libx265"),
}


def patch_card(path: Path) -> Path:
    image = Image.new("RGB", PATCH_CARD, GREY)
    draw = ImageDraw.Draw(image)
    for index, patch in enumerate(PATCHES):
        draw.rectangle((10 + 50 * index, 40, 49 + 50 * index, 139), fill=patch)
    image.save(path)
    return path


def colour_clip(folder: Path, ffmpeg: str, name: str) -> Path:
    """The patch card converted to ``name`` (SDR white at 203 cd/m² in HDR) and tagged as such."""
    options, (primaries, trc, matrix), pix_fmt, codec = COLOUR_SPACES[name]
    path = folder / f"{name}.mp4"
    codec_args = ["-x265-params", "log-level=error"] if codec == "libx265" else ["-preset", "ultrafast"]
    run(ffmpeg, "-loop", "1", "-i", str(patch_card(folder / "card.png")), "-t", "1", "-r", "4",
        "-vf", f"zscale=rin=full:pin=bt709:tin=bt709:{options}:r=tv:npl={REFERENCE_WHITE_NITS},format={pix_fmt}",
        "-color_primaries", primaries, "-color_trc", trc, "-colorspace", matrix, "-color_range", "tv",
        "-c:v", codec, *codec_args, "-crf", "12", str(path))
    return path


def bt709_to_linear(level: int) -> float:
    v = level / 255
    return v / 4.5 if v < 0.081 else ((v + 0.099) / 1.099) ** (1 / 0.45)


def linear_to_bt709(value: float) -> int:
    value = min(1.0, max(0.0, value))
    v = 4.5 * value if value < 0.018 else 1.099 * value**0.45 - 0.099
    return round(v * 255)


def mobius(signal: float, knee: float, peak: float) -> float:
    """The Möbius tone curve (as in libplacebo and ffmpeg's tonemap): identity up to ``knee``."""
    if signal <= knee:
        return signal
    a = -knee * knee * (peak - 1) / (knee * knee - 2 * knee + peak)
    b = (knee * knee - 2 * knee * peak + peak) / max(peak - 1, 1e-6)
    return (b * b + 2 * b * knee + knee * knee) / (b - a) * (signal + a) / (signal + b)


def reference(colour: tuple[int, int, int], hdr: bool) -> tuple[int, ...]:
    """What a BT.709 SDR display should show for a source patch of ``colour``.

    SDR sources come back as they were. HDR sources (made with SDR white at
    reference white) are tone-mapped: linear light relative to reference white,
    the Möbius curve on the brightest channel (hue kept), BT.709 OETF.
    """
    if not hdr:
        return colour
    linear = [bt709_to_linear(c) for c in colour]
    signal = max(max(linear), 1e-6)
    ratio = mobius(signal, TONE_KNEE, ASSUMED_PEAK_NITS / REFERENCE_WHITE_NITS) / signal
    return tuple(linear_to_bt709(c * ratio) for c in linear)


@pytest.mark.parametrize("name", list(COLOUR_SPACES))
def test_clips_come_out_as_bt709_sdr_that_looks_like_their_source(tmp_path: Path, ffmpeg: str, name: str) -> None:
    clip = colour_clip(tmp_path, ffmpeg, name)

    shown = show(tmp_path, ffmpeg, "video", clip)

    assert "yuv420p(tv, bt709, progressive)" in shown.video_stream  # primaries, trc and matrix all BT.709
    x, y, scale = media_place(shown.plan, PATCH_CARD)
    hdr = name in ("hlg", "pq")
    for picture_name, picture in (("video", shown.frame), ("poster", shown.poster)):
        for index, patch in enumerate([*PATCHES, GREY]):
            sx, sy = (30 + 50 * index, 90) if index < len(PATCHES) else (5, 160)
            seen = picture.getpixel((round(x + sx * scale), round(y + sy * scale)))
            expected = reference(patch, hdr)
            assert close(seen, expected, COLOUR_TOLERANCE), (picture_name, patch, expected, seen)


def test_hdr_tone_curve_reference_is_sane() -> None:
    # The reference itself: in-range colours untouched, SDR white rolled off but still bright.
    assert reference(GREY, hdr=True) == GREY
    white = reference((255, 255, 255), hdr=True)
    assert 215 <= white[0] < 255 and math.isclose(white[0], white[2])


# -- colour of images: ICC profiles --------------------------------------------------

#: Display P3 colourants adapted to D50 (as in Apple's profile), and D50 white.
P3_COLOURANTS = {"rXYZ": (0.515102, 0.241182, -0.001049), "gXYZ": (0.291965, 0.692236, 0.041882),
                 "bXYZ": (0.157153, 0.066582, 0.784378), "wtpt": (0.9642, 1.0, 0.8249)}
#: Linear Display P3 to linear sRGB (both D65).
P3_TO_SRGB = ((1.2249, -0.2247, 0.0), (-0.0420, 1.0419, 0.0), (-0.0197, -0.0786, 1.0979))
P3_PATCHES = [(200, 70, 60), (80, 170, 90), (60, 80, 200)]


def display_p3_profile() -> bytes:
    """A minimal ICC v2 matrix/TRC profile for Display P3 (sRGB's curve), built by hand."""

    def s15(value: float) -> bytes:
        return struct.pack(">i", round(value * 65536))

    def xyz(values: tuple[float, float, float]) -> bytes:
        return b"XYZ \0\0\0\0" + b"".join(s15(v) for v in values)

    # parametricCurveType 3: the sRGB curve
    curve = b"para\0\0\0\0" + struct.pack(">HH", 3, 0) + b"".join(
        s15(v) for v in (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045))
    text = b"Display P3 (test)\0"
    desc = b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text + b"\0" * 4 + b"\0" * 4 + b"\0" * 3 + b"\0" * 67
    tags = [(b"desc", desc), *((name.encode(), xyz(v)) for name, v in P3_COLOURANTS.items()),
            (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)]
    table_size = 4 + 12 * len(tags)
    offset, entries, data = 128 + table_size, b"", b""
    for signature, body in tags:
        body += b"\0" * (-len(body) % 4)
        entries += signature + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = 128 + table_size + len(data)
    header = (struct.pack(">I", size) + b"lcms" + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ " + b"\0" * 12
              + b"acsp" + b"\0" * 24 + struct.pack(">I", 0) + s15(0.9642) + s15(1.0) + s15(0.8249) + b"\0" * 48)
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + entries + data


def srgb_to_linear(level: int) -> float:
    v = level / 255
    return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4


def linear_to_srgb(value: float) -> int:
    value = min(1.0, max(0.0, value))
    return round(255 * (value * 12.92 if value <= 0.0031308 else 1.055 * value ** (1 / 2.4) - 0.055))


def p3_to_srgb(colour: tuple[int, int, int]) -> tuple[int, ...]:
    linear = [srgb_to_linear(c) for c in colour]
    return tuple(linear_to_srgb(sum(m * c for m, c in zip(row, linear, strict=True))) for row in P3_TO_SRGB)


def test_an_icc_profile_is_converted_to_srgb(tmp_path: Path, ffmpeg: str) -> None:
    # Given a photo in Display P3, as phones take them: its numbers mean more saturated colours than sRGB's
    photo = Image.new("RGB", PATCH_CARD, GREY)
    draw = ImageDraw.Draw(photo)
    for index, patch in enumerate(P3_PATCHES):
        draw.rectangle((10 + 100 * index, 40, 99 + 100 * index, 139), fill=patch)
    path = tmp_path / "p3.jpg"
    photo.save(path, "JPEG", quality=95, icc_profile=display_p3_profile())

    shown = show(tmp_path, ffmpeg, "image", path)

    x, y, scale = media_place(shown.plan, PATCH_CARD)
    for picture_name, picture in (("video", shown.frame), ("poster", shown.poster)):
        for index, patch in enumerate(P3_PATCHES):
            seen = picture.getpixel((round(x + (55 + 100 * index) * scale), round(y + 90 * scale)))
            expected = p3_to_srgb(patch)
            assert close(seen, expected, COLOUR_TOLERANCE), (picture_name, patch, expected, seen)


# -- the pure parts: probe, the plain path, cache keys, pixel aspect -----------------

PROBE_HEADER = """Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'file:/tmp/hdr.mov':
  Duration: 00:00:01.00, start: 0.000000, bitrate: 379 kb/s
  Stream #0:0[0x1]: Video: hevc (Main 10), yuv420p10le(tv, bt2020nc/bt2020/smpte2084, progressive), 3840x2160, 24 fps
    Metadata:
      handler_name    : VideoHandler
    Side data:
      Mastering Display Metadata, has_primaries:1 has_luminance:1 min_luminance=0.000100, max_luminance=4000.000000
      Content Light Level Metadata, MaxCLL=1600, MaxFALL=400
  Stream #0:1[0x2]: Data: none (tmcd / 0x64636D74)
Input #1, matroska,webm, from 'file:/tmp/overlay.webm':
  Duration: 00:00:01.00, start: 0.000000, bitrate: 20 kb/s
  Stream #1:0: Video: vp9 (Profile 0), yuv420p(tv, progressive), 160x120, SAR 1:1 DAR 4:3, 4 fps, 4 tbr, 1k tbn
    Metadata:
      alpha_mode      : 1
      ENCODER         : Lavc63.1.102 libvpx-vp9
Input #2, mov,mp4,m4a,3gp,3g2,mj2, from 'file:/tmp/sd.mp4':
  Duration: 00:00:01.00, start: 0.000000, bitrate: 20 kb/s
  Stream #2:0[0x1](und): Video: h264 (High), yuv420p(tv, smpte170m, progressive), 720x480 [SAR 8:9 DAR 4:3], 24 fps
Input #3, gif, from 'file:/tmp/disc.gif':
  Duration: 00:00:01.00, start: 0.000000, bitrate: 15 kb/s
  Stream #3:0: Video: gif, bgra, 160x120, 4 fps, 4 tbr, 100 tbn
At least one output file must be specified
"""


def test_probe_reads_pixel_format_colour_alpha_and_light_level(monkeypatch: pytest.MonkeyPatch) -> None:
    class Completed:
        stderr = PROBE_HEADER.encode()

    monkeypatch.setattr(probe, "run_capture", lambda label, args: Completed())

    hdr, webm, sd, gif = (info.video for info in probe.probe("ffmpeg", [Path(f"/tmp/{n}") for n in "abcd"]))

    assert hdr is not None and (hdr.pix_fmt, hdr.has_alpha, hdr.alpha_mode) == ("yuv420p10le", False, False)
    assert (hdr.colour.range, hdr.colour.matrix, hdr.colour.primaries, hdr.colour.transfer) == (
        "tv", "bt2020nc", "bt2020", "smpte2084")
    assert hdr.colour.peak_nits == 1600  # MaxCLL first, the mastering peak only without it
    assert webm is not None and webm.alpha_mode and webm.has_alpha
    assert sd is not None and (sd.colour.matrix, sd.colour.primaries, sd.colour.transfer) == ("smpte170m",) * 3
    assert gif is not None and gif.has_alpha and gif.is_rgb and gif.colour.primaries is None


def stream(pix_fmt: str = "yuv420p", codec: str = "h264", **declared: Any) -> VideoStream:
    return VideoStream(codec, 1920, 1080, pix_fmt, ClipColour(**declared), alpha_mode=codec == "vp9")


def test_plain_clips_keep_the_single_scale_they_always_had() -> None:
    for plain in (stream(), stream(range="tv", matrix="bt709", primaries="bt709", transfer="bt709"),
                  stream(matrix="smpte170m"), stream("yuvj420p", range="pc", matrix="bt709")):
        filters = re.split(r",(?=(?:[^']*'[^']*')*[^']*$)", ClipPicture.of(plain).filters(640, 360))  # not in quotes
        assert [f.split("=")[0] for f in filters] == ["scale", "setsar", "format"], plain
        assert filters[-1] == "format=yuv420p"


def test_pictures_that_need_it_get_alpha_decoders_and_colour_conversion() -> None:
    vp9 = ClipPicture.of(stream(codec="vp9"))
    assert vp9.input_args() == ["-c:v", "libvpx-vp9"] and vp9.filters(64, 64).endswith("format=yuva420p")
    sd = ClipPicture.of(stream(range="tv", matrix="smpte170m", primaries="smpte170m", transfer="smpte170m"))
    assert "zscale=pin=smpte170m:tin=smpte170m:min=smpte170m:rin=tv:p=bt709:t=bt709:m=bt709" in sd.filters(64, 64)
    pq = ClipPicture.of(stream("yuv420p10le", range="tv", primaries="bt2020", transfer="smpte2084", peak_nits=4000))
    assert "tonemap=tonemap=mobius" in pq.filters(64, 64) and f"peak={4000 / 203:.4f}" in pq.filters(64, 64)
    hlg = ClipPicture.of(stream("yuv420p10le", transfer="arib-std-b67"))  # primaries unspecified: BT.2020
    assert "pin=bt2020:tin=arib-std-b67:min=bt2020nc" in hlg.filters(64, 64)
    assert f"peak={1000 / 203:.4f}" in hlg.filters(64, 64)


def test_the_segment_key_changes_with_anything_that_changes_the_picture(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = parse_spec(make_spec([{"id": "a", "durationMs": 1000, "asset": "clip"}],
                                {"clip": asset("video", Path("/abs/clip.mp4"))}))
    slot = layout_timeline(spec)[0]
    layout = plan_layout(spec.output, None, None, has_media=True)

    def key(video: VideoStream) -> str:
        resolved = ResolvedAsset(spec.assets["clip"], "0" * 64, 1, media=MediaInfo(1.0, video, None))
        return cache.key(plan.segment_identity({}, spec.output, slot, resolved, layout))

    sdr, hdr = stream(), stream("yuv420p10le", primaries="bt2020", transfer="smpte2084")
    sdr_key, hdr_key = key(sdr), key(hdr)
    assert len({sdr_key, hdr_key, key(stream(codec="vp9"))}) == 3  # same bytes, other pictures: other keys

    monkeypatch.setattr(colour, "TONE_KNEE", 0.5)
    assert key(hdr) != hdr_key and key(sdr) == sdr_key  # a tone-curve change re-renders HDR clips only


@pytest.mark.parametrize(
    "info, expected",
    [
        ({"aspect": (64, 45)}, 64 / 45),  # PNG pHYs, unit 0: what ffmpeg writes for SAR 64:45
        ({"jfif_unit": 0, "jfif_density": (8, 9)}, 8 / 9),
        ({"jfif_unit": 1, "jfif_density": (300, 150), "dpi": (300, 150)}, 1.0),  # print density: ignored
        ({"dpi": (72, 144)}, 1.0),
        ({"aspect": (100, 1)}, 1.0),  # beyond 4:1: broken metadata
        ({"aspect": (0, 0)}, 1.0),
    ],
)
def test_pixel_aspect_comes_from_aspect_only_densities(info: dict[str, Any], expected: float) -> None:
    image = Image.new("RGB", (10, 10))
    image.info.update(info)

    assert images.pixel_aspect(image) == pytest.approx(expected)


def test_square_pixels_stretch_small_images_and_squeeze_huge_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    assert images.square_pixels(Image.new("RGB", (720, 576)), 64 / 45).size == (1024, 576)
    assert images.square_pixels(Image.new("RGB", (720, 576)), 8 / 9).size == (720, 648)
    monkeypatch.setattr(images, "MAX_STRETCHED_PIXELS", 500_000)
    assert images.square_pixels(Image.new("RGB", (720, 576)), 64 / 45).size == (720, 405)
