"""Text in every script, end to end: ``python -m renderers.ffmpeg`` renders, the frames are read back.

CJK titles must show distinct glyphs (not one repeated box), emoji must keep
their colours in the poster and in the video, and a character no installed
font covers must give a ``missing_glyphs`` warning in ``report.json`` naming
the step and the code point. Without the Noto fonts (``PREVIEW_SYSTEM_FONTS=0``
with a folder holding DejaVu alone, or no font at all) a render still
succeeds, with warnings. Installing a font re-renders the text's segment.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from font_files import system_font
from PIL import Image, ImageChops

from preview_actors.renderer import renderer_environment

ROOT = Path(__file__).resolve().parents[2]

CJK_TITLE = "第三章：東京と서울の比較"
CJK_TEXT = "長い段落には空白がないので、文字と文字の間で改行しなければならない。中文句子也一样，没有空格。"
EMOJI_TITLE = "Launch day 🎉🔥"
EMOJI_TEXT = "Team 👩\u200d💻🧑🏿\u200d🚀, flags 🇧🇷🇰🇷, thumbs 👍🏻"


@dataclass
class Result:
    returncode: int
    stderr: str
    out_dir: Path

    def json(self, name: str) -> Any:
        return json.loads((self.out_dir / name).read_text(encoding="utf-8"))

    def poster(self) -> Image.Image:
        with Image.open(self.out_dir / "poster.jpg") as image:
            return image.convert("RGB")


def environment(**overrides: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items()
           if name not in ("PREVIEW_FONT_DIRS", "PREVIEW_SYSTEM_FONTS")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(overrides)
    return env


def render(steps: list[dict[str, Any]], out_dir: Path, *flags: str, env: dict[str, str] | None = None,
           width: int = 640, height: int = 360, cache_dir: Path | None = None,
           renderer: str = "renderers.ffmpeg") -> Result:
    spec = {
        "specVersion": 1,
        "jobId": "job-1",
        "chapterId": "chapter-1",
        "output": {"width": width, "height": height, "fps": 10},
        "steps": [
            {"durationMs": 500, "title": None, "text": None, "asset": None, "background": "#404040", **step}
            for step in steps
        ],
        "assets": {},
        "audio": None,
        "cacheDir": str(cache_dir) if cache_dir is not None else None,
    }
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    spec_file = out_dir.parent / f"{out_dir.name}.spec.json"
    spec_file.write_text(json.dumps(spec), encoding="utf-8")
    completed = subprocess.run(
        [sys.executable, "-m", renderer, str(spec_file), str(out_dir), *flags],
        cwd=ROOT, env=env or environment(), capture_output=True, text=True, timeout=120,
    )
    return Result(completed.returncode, completed.stderr, out_dir)


def video_frame(video: Path, seconds: float) -> Image.Image:
    """The frame shown at ``seconds`` (steps fade in from black: not the first one)."""
    from imageio_ffmpeg import get_ffmpeg_exe

    completed = subprocess.run(
        [get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-ss", str(seconds), "-i", str(video),
         "-frames:v", "1",
         "-f", "image2pipe", "-c:v", "png", "-"],
        capture_output=True, check=True, timeout=60,
    )
    with Image.open(io.BytesIO(completed.stdout)) as image:
        return image.convert("RGB")




@pytest.fixture
def noto_installed() -> None:
    for name in ("NotoSansCJK-Regular.ttc", "NotoSansCJK-Bold.ttc", "NotoColorEmoji.ttf"):
        system_font(name)


def ink_bands(image: Image.Image, background: tuple[int, int, int], axis: int,
              box: tuple[int, int, int, int] | None = None) -> list[tuple[int, int]]:
    """Runs of rows (axis 1) or columns (axis 0) of ``box`` holding something other than the background."""
    region = image.crop(box) if box else image
    mask = ImageChops.difference(region, Image.new("RGB", region.size, background)).convert("L")
    mask = mask.point(lambda v: 255 if v > 60 else 0)
    width, height = mask.size
    pixels = mask.load()
    assert pixels is not None
    length, across = (width, height) if axis == 0 else (height, width)
    inked = [any(pixels[(i, j) if axis == 0 else (j, i)] for j in range(across)) for i in range(length)]
    bands, start = [], None
    for i, on in enumerate([*inked, False]):
        if on and start is None:
            start = i
        elif not on and start is not None:
            bands.append((start, i))
            start = None
    return bands


def shape(image: Image.Image, box: tuple[int, int, int, int], background: int = 255) -> list[int]:
    """The ink in ``box`` (on a grey ``background``), cropped to itself and scaled to 16×16 grey levels."""
    crop = image.crop(box).convert("L")
    inner = ImageChops.difference(crop, Image.new("L", crop.size, background)).getbbox()
    if inner:
        crop = crop.crop(inner)
    return list(crop.resize((16, 16), Image.Resampling.BILINEAR).tobytes())


def distinct_shapes(shapes: list[list[int]], threshold: float = 25.0) -> int:
    kinds: list[list[int]] = []
    for candidate in shapes:
        if all(sum(abs(a - b) for a, b in zip(candidate, kind, strict=True)) / len(kind) > threshold for kind in kinds):
            kinds.append(candidate)
    return len(kinds)


def saturated_pixels(image: Image.Image) -> int:
    """Pixels that are neither the grey background nor the white text (nor a blend of them)."""
    data = image.convert("RGB").tobytes()
    channels = zip(data[0::3], data[1::3], data[2::3], strict=True)
    return sum(1 for r, g, b in channels if max(r, g, b) - min(r, g, b) > 80)


# -- scripts ---------------------------------------------------------------------

def test_a_cjk_title_shows_distinct_glyphs_and_its_text_wraps(tmp_path: Path, noto_installed: None) -> None:
    # Given a step titled in Japanese and Korean, with a long paragraph without spaces
    result = render([{"id": "chapter-3", "title": CJK_TITLE, "text": CJK_TEXT, "background": "#ffffff"}],
                    tmp_path / "out", "--dry-run")

    assert result.returncode == 0, result.stderr
    poster = result.poster()
    rows = ink_bands(poster, (255, 255, 255), axis=1)
    top, bottom = rows[0]
    cells = ink_bands(poster, (255, 255, 255), axis=0, box=(0, top, poster.width, bottom))
    assert len(cells) >= 10, f"expected about 12 character cells, found {len(cells)}"
    shapes = [shape(poster, (left, top, right, bottom)) for left, right in cells]
    # Then the title's cells are distinct shapes, not one repeated box
    assert distinct_shapes(shapes) >= 9, f"{distinct_shapes(shapes)} distinct shapes in {len(cells)} cells"
    # And the text, which has no spaces, wraps over several lines
    assert len(rows) >= 3, f"title and at least two lines of text expected, found rows {rows}"
    assert result.json("report.json")["warnings"] == []


def test_emoji_keep_their_colours_in_poster_and_video(tmp_path: Path, noto_installed: None) -> None:
    result = render([{"id": "launch", "title": EMOJI_TITLE, "text": EMOJI_TEXT}], tmp_path / "out")

    assert result.returncode == 0, result.stderr
    # The background is grey and the text white: colour can only come from the emoji
    assert saturated_pixels(result.poster()) > 500
    assert saturated_pixels(video_frame(result.out_dir / "video.mp4", 0.25)) > 500
    assert result.json("report.json")["warnings"] == []


# -- warnings ----------------------------------------------------------------------

def test_a_character_no_font_covers_is_a_warning_naming_step_and_code_point(tmp_path: Path) -> None:
    steps = [
        {"id": "icons", "title": "Icons", "text": "Tap \ue000 to start"},
        {"id": "plain", "title": "Plain", "text": "Latin only"},
    ]

    result = render(steps, tmp_path / "out", "--dry-run")

    assert result.returncode == 0, result.stderr
    warnings = result.json("report.json")["warnings"]
    assert [(w["code"], w["step"]) for w in warnings] == [("missing_glyphs", "icons")]
    assert "U+E000" in warnings[0]["message"] and "icons" in warnings[0]["message"]


def test_latin_text_has_an_empty_warnings_list(tmp_path: Path) -> None:
    result = render([{"id": "intro", "title": "Welcome", "text": "Body text"}], tmp_path / "out", "--dry-run")

    assert result.returncode == 0, result.stderr
    assert result.json("report.json")["warnings"] == []


def test_without_noto_fonts_the_render_succeeds_with_warnings(tmp_path: Path) -> None:
    dejavu = tmp_path / "dejavu"
    dejavu.mkdir()
    for name in ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"):
        shutil.copy(system_font(name), dejavu / name)
    step = {"id": "chapter-3", "title": f"{CJK_TITLE} 🎉", "text": CJK_TEXT}

    for label, env in (
        ("dejavu", environment(PREVIEW_SYSTEM_FONTS="0", PREVIEW_FONT_DIRS=str(dejavu))),
        ("pillow", environment(PREVIEW_SYSTEM_FONTS="0")),
    ):
        result = render([step], tmp_path / label, env=env)

        assert result.returncode == 0, (label, result.stderr)
        assert (result.out_dir / "video.mp4").stat().st_size > 0
        warnings = result.json("report.json")["warnings"]
        assert [w["step"] for w in warnings] == ["chapter-3"], label
        for code_point in ("U+7B2C", "U+C11C", "U+1F389"):  # 第, 서, 🎉
            assert code_point in warnings[0]["message"], (label, warnings)


def test_installing_a_font_re_renders_the_text_segment(tmp_path: Path) -> None:
    fonts = tmp_path / "fonts"
    fonts.mkdir()
    shutil.copy(system_font("DejaVuSans.ttf"), fonts / "DejaVuSans.ttf")
    env = environment(PREVIEW_SYSTEM_FONTS="0", PREVIEW_FONT_DIRS=str(fonts))
    steps = [{"id": "tokyo", "title": "東京", "text": "Tokyo"}]
    cache = tmp_path / "cache"

    first = render(steps, tmp_path / "first", env=env, width=160, height=90, cache_dir=cache)
    again = render(steps, tmp_path / "again", env=env, width=160, height=90, cache_dir=cache)
    (fonts / "NotoSansCJK-Regular.ttc").symlink_to(system_font("NotoSansCJK-Regular.ttc"))
    installed = render(steps, tmp_path / "installed", env=env, width=160, height=90, cache_dir=cache)

    for result in (first, again, installed):
        assert result.returncode == 0, result.stderr
    assert [r.json("report.json")["segments"][0]["reused"] for r in (first, again, installed)] == [False, True, False]
    assert first.json("report.json")["warnings"] and installed.json("report.json")["warnings"] == []


def test_a_bad_font_dir_fails_naming_the_variable(tmp_path: Path) -> None:
    env = environment(PREVIEW_FONT_DIRS=str(tmp_path / "missing"))

    result = render([{"id": "intro", "title": "Hi"}], tmp_path / "out", "--dry-run", env=env)

    assert result.returncode == 1
    assert "PREVIEW_FONT_DIRS" in result.stderr and "Traceback" not in result.stderr


def test_the_font_settings_reach_the_renderer() -> None:
    env = renderer_environment({"PREVIEW_FONT_DIRS": "/srv/fonts", "PREVIEW_SYSTEM_FONTS": "0", "SECRET": "x"})

    assert env == {"PREVIEW_FONT_DIRS": "/srv/fonts", "PREVIEW_SYSTEM_FONTS": "0"}


def test_the_mock_renderer_reports_no_warnings(tmp_path: Path) -> None:
    result = render([{"id": "intro", "title": "\ue000"}], tmp_path / "out", renderer="renderers.mock")

    assert result.returncode == 0, result.stderr
    assert result.json("report.json")["warnings"] == []
