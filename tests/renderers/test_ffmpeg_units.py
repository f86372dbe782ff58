"""The ffmpeg renderer's pure parts: spec checks, timeline, layout, text, keys, probe parsing."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from renderers.ffmpeg import cache, probe
from renderers.ffmpeg.compose import fit, plan_layout, text_colour
from renderers.ffmpeg.spec import Output, parse_spec
from renderers.ffmpeg.text import direction, layout_block, load_font, measure
from renderers.ffmpeg.timeline import layout_timeline, total_frames
from renderers.protocol import BadInput

SPEC: dict[str, Any] = {
    "specVersion": 1,
    "output": {"width": 320, "height": 180, "fps": 30},
    "steps": [{"id": "a", "durationMs": 1000, "title": "T", "text": None, "asset": None, "background": "#102030"}],
    "assets": {"cover": {"type": "image", "path": "/abs/cover.png", "sha256": None}},
    "audio": None,
    "cacheDir": None,
}


def spec_with(**changes: Any) -> dict[str, Any]:
    spec = copy.deepcopy(SPEC)
    spec.update(changes)
    return spec


# -- timeline ------------------------------------------------------------------

def test_step_frames_add_up_to_the_total_duration_without_drift() -> None:
    # Given 7 steps of 333 ms at 30 fps (9.99 frames each)
    steps = [dict(SPEC["steps"][0], id=f"s{i}", durationMs=333) for i in range(7)]

    slots = layout_timeline(parse_spec(spec_with(steps=steps)))

    assert total_frames(slots) == 70  # 2331 ms = 69.93 frames: within half a frame
    assert [slot.start_frame for slot in slots] == [0, 10, 20, 30, 40, 50, 60]
    assert all(slot.frames in (9, 10) for slot in slots)


def test_fades_take_at_most_a_quarter_of_a_short_step() -> None:
    steps = [dict(SPEC["steps"][0], id="long", durationMs=3000), dict(SPEC["steps"][0], id="short", durationMs=100)]

    long, short = layout_timeline(parse_spec(spec_with(steps=steps)))

    assert long.fade_frames == 6  # 200 ms at 30 fps
    assert short.frames == 3 and short.fade_frames == 0


# -- spec ----------------------------------------------------------------------

@pytest.mark.parametrize(
    "change, field",
    [
        (lambda s: s["steps"][0].update(durationMs=True), "steps[0].durationMs"),
        (lambda s: s["steps"][0].update(durationMs=1.5), "steps[0].durationMs"),
        (lambda s: s["steps"][0].update(title=7), "steps[0].title"),
        (lambda s: s["steps"][0].update(background="#12345"), "steps[0].background"),
        (lambda s: s["steps"][0].pop("id"), "steps[0].id"),
        (lambda s: s["output"].update(height=4000), "output.height"),
        (lambda s: s["assets"]["cover"].update(path="relative.png"), "assets['cover'].path"),
        (lambda s: s["assets"]["cover"].update(type="font"), "assets['cover'].type"),
        (lambda s: s["assets"]["cover"].update(sha256="xyz"), "assets['cover'].sha256"),
        (lambda s: s.update(audio={"asset": "cover"}), "audio.asset"),
        (lambda s: s.update(steps=[dict(s["steps"][0], id=str(i), durationMs=3_000_000) for i in "ab"]), "steps: total"),
    ],
)
def test_bad_fields_are_named(change: Any, field: str) -> None:
    spec = copy.deepcopy(SPEC)
    change(spec)

    with pytest.raises(BadInput, match=re.escape(field)):
        parse_spec(spec)


def test_short_colours_and_missing_optional_fields_are_accepted() -> None:
    spec = spec_with(steps=[{"id": "a", "durationMs": 500, "background": "#fa0"}])

    parsed = parse_spec(spec)

    assert parsed.steps[0].background == (255, 170, 0)
    assert parsed.steps[0].title is None and parsed.steps[0].asset is None


# -- layout and text -------------------------------------------------------------

@pytest.mark.parametrize(
    "value",
    [
        "A plain sentence that has to wrap over several lines of a narrow box",
        "Donaudampfschifffahrtsgesellschaftskapitänsmützenabzeichen" * 4,
        "مرحبا بالعالم، هذا نص عربي طويل إلى حد ما حتى يلتف على عدة أسطر",
        "👨‍👩‍👧‍👦" * 30 + " e\u0301" * 50,
        "word " * 2000,
    ],
)
def test_wrapped_text_fits_its_box(value: str) -> None:
    block = layout_block(value, bold=False, size=14, min_size=9, max_width=120, max_height=60)

    assert block is not None
    assert block.height <= 60
    font = load_font(False, block.size)
    for line in block.lines:
        assert line.text
        assert measure(font, line.text, line.direction) <= 120 or len(line.text) == 1


def test_text_that_cannot_fit_ends_in_an_ellipsis() -> None:
    block = layout_block("word " * 500, bold=False, size=14, min_size=10, max_width=200, max_height=40)

    assert block is not None and block.lines[-1].text.endswith("…")


def test_paragraph_direction_follows_the_first_strong_character() -> None:
    assert direction("שלום world") == "rtl"
    assert direction("123 مرحبا") == "rtl"
    assert direction("hello עולם") == "ltr"
    assert direction("123 !") == "ltr"


def test_media_sits_between_title_and_text_inside_the_margins() -> None:
    layout = plan_layout(Output(1280, 720, 30), "A title", "Some text", has_media=True)

    assert layout.title_box and layout.text_box and layout.media_box
    assert layout.title_box[3] <= layout.media_box[1] < layout.media_box[3] <= layout.text_box[1]
    for box in (layout.title_box, layout.text_box, layout.media_box):
        assert 0 < box[0] and 0 < box[1] and box[2] < 1280 and box[3] < 720


def test_fit_keeps_the_aspect_ratio_and_centres() -> None:
    assert fit((400, 100), (0, 0, 200, 200)) == (0, 75, 200, 50)
    assert fit((100, 400), (10, 10, 110, 210)) == (35, 10, 50, 200)


def test_text_colour_contrasts_with_the_background() -> None:
    assert text_colour((16, 32, 48)) == (255, 255, 255)
    assert text_colour((240, 240, 230)) == (17, 17, 17)


# -- keys and probe parsing ------------------------------------------------------

def test_cache_keys_are_canonical() -> None:
    assert cache.key({"a": 1, "b": [1, "é"]}) == cache.key({"b": [1, "é"], "a": 1})
    assert cache.key({"a": 1}) != cache.key({"a": 2})


PROBE_OUTPUT = """Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'file:/tmp/clip.mp4':
  Duration: 00:00:02.50, start: 0.000000, bitrate: 352 kb/s
  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(progressive), 480x270 [SAR 1:1 DAR 16:9], 269 kb/s, 24 fps
  Stream #0:1[0x2](und): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, stereo, fltp, 69 kb/s (default)
Input #1, mp3, from 'file:/tmp/cover-art.mp3':
  Duration: N/A, bitrate: N/A
  Stream #1:0: Audio: mp3 (mp3float), 22050 Hz, mono, fltp, 32 kb/s
  Stream #1:1: Video: mjpeg (Baseline), yuvj420p(pc), 300x300, 90k tbr (attached pic)
At least one output file must be specified
"""  # noqa: E501 - ffmpeg's own output, verbatim


def test_probe_output_is_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    class Completed:
        stderr = PROBE_OUTPUT.encode()

    monkeypatch.setattr(probe, "run_capture", lambda label, args: Completed())

    clip, song = probe.probe("ffmpeg", [Path("/tmp/clip.mp4"), Path("/tmp/cover-art.mp3")])

    assert clip.duration_s == 2.5
    assert clip.video == probe.VideoStream("h264", 480, 270, "yuv420p")
    assert clip.audio == probe.AudioStream("aac", 44100, 2)
    assert song.duration_s is None and song.video is None  # cover art is not a video
    assert song.audio == probe.AudioStream("mp3", 22050, 1)
