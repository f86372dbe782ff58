"""Text in every script, at the layout level: fallback fonts, line breaking, emoji, warnings.

These tests call the text module in-process on font sets built for them
(``FontSet.discover``), draw blocks into small frames and read the pixels back.
The system's Noto fonts (``fonts-noto-core``, ``fonts-noto-cjk``,
``fonts-noto-color-emoji``, installed by ``.ci/run``) are needed for the
scripts they cover: without them those cases skip locally and fail in CI.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from font_files import system_font
from PIL import Image, ImageChops

from renderers.ffmpeg import fonts
from renderers.ffmpeg.fonts import FontSet, FontSettingError
from renderers.ffmpeg.scripts import language_hint
from renderers.ffmpeg.text import (
    TextBlock,
    draw_block,
    layout_block,
    load_font,
    measure,
    missing_glyphs_warning,
)

CJK_TITLE = "第三章：東京と서울の比較"
CJK_TEXT = "長い段落には空白がないので、文字と文字の間で改行しなければならない。中文句子也一样，没有空格。"
#: No line may start with these, nor end with the openers (kinsoku shori).
NO_LINE_START = "、。，．」』）！？：；ー"
NO_LINE_END = "「『（"

BLACK = (0, 0, 0)
WHITE = (255, 255, 255)




@pytest.fixture(scope="module")
def noto() -> FontSet:
    """The system's fonts, Noto included."""
    for name in ("NotoSansCJK-Regular.ttc", "NotoColorEmoji.ttf", "NotoSans-Regular.ttf", "DejaVuSans.ttf"):
        system_font(name)
    return FontSet.discover([], system=True)


@pytest.fixture
def dejavu_only(tmp_path: Path) -> FontSet:
    """A machine with DejaVu Sans alone (no Noto, no fontconfig)."""
    folder = tmp_path / "dejavu"
    folder.mkdir()
    for name in ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"):
        shutil.copy(system_font(name), folder / name)
    return FontSet.discover([folder], system=False)


def block(fonts_: FontSet, value: str, *, size: int = 40, width: int = 2000, height: int = 400,
          bold: bool = False) -> TextBlock:
    laid_out = layout_block(value, bold=bold, size=size, min_size=size, max_width=width, max_height=height,
                            fonts=fonts_)
    assert laid_out is not None
    return laid_out


def drawn(laid_out: TextBlock, *, width: int = 2000, background: tuple[int, int, int] = BLACK,
          fill: tuple[int, int, int] = WHITE) -> Image.Image:
    frame = Image.new("RGB", (width, laid_out.height), background)
    draw_block(frame, laid_out, (0, 0, width, laid_out.height), fill)
    return frame


def ink_box(frame: Image.Image, background: tuple[int, int, int] = BLACK) -> tuple[int, int, int, int]:
    """Bounding box of everything that is not the background."""
    plain = Image.new("RGB", frame.size, background)
    box = ImageChops.difference(frame, plain).convert("L").point(lambda v: 255 if v > 24 else 0).getbbox()
    assert box is not None, "nothing was drawn"
    return box


def saturated_pixels(frame: Image.Image) -> int:
    """Pixels whose channels differ a lot: neither grey text nor a grey background."""
    data = frame.convert("RGB").tobytes()
    channels = zip(data[0::3], data[1::3], data[2::3], strict=True)
    return sum(1 for r, g, b in channels if max(r, g, b) - min(r, g, b) > 80)


# -- choosing fonts ----------------------------------------------------------------

def test_each_script_gets_a_font_that_covers_it(noto: FontSet) -> None:
    for sample in ("Ab", "Ωμ", "Жж", "مر", "של", "नम", "ภา", "東京", "かな", "한국", "🎉"):
        for char in sample:
            face = noto.face_for(char, bold=False, lang=language_hint(sample))
            assert face is not None, f"no face for {char!r}"
            assert noto.covers(face, ord(char))


def test_the_cjk_face_follows_the_language(noto: FontSet) -> None:
    # Given Han characters that every CJK face covers, the face depends on the paragraph's language
    assert language_hint("東京と大阪") == "ja"
    assert language_hint("서울과 東京") == "ko"
    assert language_hint("中文句子也一样") == "zh-Hans"

    kana = noto.face_for("と", bold=False, lang="zh-Hans")
    hangul = noto.face_for("서", bold=False, lang="ja")
    han_ja = noto.face_for("東", bold=False, lang="ja")
    han_zh = noto.face_for("东", bold=False, lang="zh-Hans")
    assert kana is not None and kana.family.endswith("JP")
    assert hangul is not None and hangul.family.endswith("KR")
    assert han_ja is not None and han_ja.family.endswith("JP")
    assert han_zh is not None and han_zh.family.endswith("SC")


def test_titles_fall_back_to_bold_faces(noto: FontSet) -> None:
    face = noto.face_for("東", bold=True, lang="ja")
    assert face is not None and face.bold and face.family.endswith("JP")


def test_font_dirs_are_searched_first(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    shutil.copy(system_font("NotoSans-Regular.ttf"), folder / "Mine.ttf")

    chosen = FontSet.discover([folder], system=True).face_for("A", bold=False, lang="")

    assert chosen is not None and chosen.path == str(folder / "Mine.ttf")


def test_the_font_set_reads_its_environment(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    shutil.copy(system_font("DejaVuSans.ttf"), second / "DejaVuSans.ttf")

    font_set = FontSet.from_environ({"PREVIEW_FONT_DIRS": f"{first}:{second}:", "PREVIEW_SYSTEM_FONTS": "0"})

    assert [face.path for face in font_set.faces if face.source == "dirs"] == [str(second / "DejaVuSans.ttf")]


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"PREVIEW_FONT_DIRS": "/no/such/folder"}, "PREVIEW_FONT_DIRS"),
        ({"PREVIEW_SYSTEM_FONTS": "maybe"}, "PREVIEW_SYSTEM_FONTS"),
    ],
)
def test_bad_font_settings_are_named(environ: dict[str, str], named: str) -> None:
    with pytest.raises(FontSettingError, match=named):
        FontSet.from_environ(environ)


def test_installing_a_font_changes_the_identity(tmp_path: Path) -> None:
    folder = tmp_path / "fonts"
    folder.mkdir()
    shutil.copy(system_font("DejaVuSans.ttf"), folder / "DejaVuSans.ttf")
    before = FontSet.discover([folder], system=False).identity()

    # Given the same folder, the identity is the same; a new font or a changed file changes it
    assert FontSet.discover([folder], system=False).identity() == before
    shutil.copy(system_font("NotoSans-Regular.ttf"), folder / "NotoSans-Regular.ttf")
    added = FontSet.discover([folder], system=False).identity()
    os.utime(folder / "DejaVuSans.ttf", ns=(1, 1))
    touched = FontSet.discover([folder], system=False).identity()

    assert len({repr(before), repr(added), repr(touched)}) == 3


# -- line breaking ---------------------------------------------------------------

QUOTED = "彼は「こんにちは」と言った（笑）。「また明日」と返した。" * 3


@pytest.mark.parametrize("value", [CJK_TEXT, QUOTED], ids=["issue", "brackets"])
@pytest.mark.parametrize("width", range(150, 700, 23))
def test_cjk_breaks_between_characters_with_kinsoku(noto: FontSet, width: int, value: str) -> None:
    laid_out = block(noto, value, size=20, width=width, height=2000)

    lines = [line.text for line in laid_out.lines]
    assert "".join(lines) == value
    for number, line in enumerate(lines):
        assert line[0] not in NO_LINE_START, f"line {number} starts with {line[0]!r}: {lines}"
        assert line[-1] not in NO_LINE_END, f"line {number} ends with {line[-1]!r}: {lines}"
    # Every line but the last is nearly full: it breaks between characters, not only at spaces
    # (kinsoku may push a few characters, such as "（笑）。", to the next line)
    font = load_font(False, 20, fonts=noto)
    for full in laid_out.lines[:-1]:
        assert width - 5 * 20 < measure(font, full.text, full.direction, fonts=noto) <= width


def test_latin_still_breaks_at_spaces(noto: FontSet) -> None:
    value = "A plain sentence that has to wrap over several lines of a narrow box"

    laid_out = block(noto, value, size=20, width=160, height=2000)

    assert len(laid_out.lines) > 2
    assert " ".join(line.text for line in laid_out.lines) == value


def test_latin_beside_cjk_breaks_at_spaces_and_between_ideographs(noto: FontSet) -> None:
    value = "Preview 東京の比較 done"

    laid_out = block(noto, value, size=20, width=110, height=2000)

    lines = [line.text for line in laid_out.lines]
    assert "Preview" in lines[0] and "done" in lines[-1]
    assert "".join(lines).replace(" ", "") == value.replace(" ", "")
    assert not any("東京の比較" in line for line in lines), f"the ideographs were not broken: {lines}"


# -- emoji -----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("sequence", "single"),
    [
        ("👩\u200d💻", "👩"),  # ZWJ sequence
        ("🧑🏿\u200d🚀", "🧑"),  # skin tone and ZWJ
        ("🇧🇷", "👩"),  # flag: a pair of regional indicators
        ("👍🏻", "👍"),  # skin tone modifier
        ("❤\ufe0f", "👩"),  # variation selector
    ],
)
def test_an_emoji_sequence_is_one_glyph(noto: FontSet, sequence: str, single: str) -> None:
    one = ink_box(drawn(block(noto, single)))
    both = ink_box(drawn(block(noto, sequence)))

    one_width, width = one[2] - one[0], both[2] - both[0]
    assert 0.75 * one_width <= width <= 1.25 * one_width, (sequence, width, one_width)


def test_two_emoji_without_a_joiner_are_two_glyphs(noto: FontSet) -> None:
    one = ink_box(drawn(block(noto, "👩")))
    two = ink_box(drawn(block(noto, "👩💻")))

    assert (two[2] - two[0]) > 1.6 * (one[2] - one[0])


def test_emoji_keep_their_colours_and_text_keeps_its_colour(noto: FontSet) -> None:
    frame = drawn(block(noto, "Launch day 🎉🔥"), background=(64, 64, 64))

    assert saturated_pixels(frame) > 300
    text_only = drawn(block(noto, "Launch day"), background=(64, 64, 64))
    assert saturated_pixels(text_only) == 0


def test_emoji_are_scaled_to_the_line(noto: FontSet) -> None:
    laid_out = block(noto, "Ag🎉", size=30)
    frame = drawn(laid_out)

    top, bottom = ink_box(frame)[1], ink_box(frame)[3]
    assert bottom - top <= laid_out.line_height
    assert bottom <= laid_out.height


def test_right_to_left_lines_put_a_trailing_emoji_on_the_left(noto: FontSet) -> None:
    frame = drawn(block(noto, "שלום עולם 🎉"), background=(64, 64, 64))

    def columns(test: object) -> list[int]:
        return [x for x in range(frame.width) if any(test(frame.getpixel((x, y))) for y in range(frame.height))]  # type: ignore[operator]

    emoji = columns(lambda p: max(p) - min(p) > 80)
    assert emoji, "the emoji was not drawn in colour"
    hebrew = [x for x in columns(lambda p: min(p) > 200) if not emoji[0] <= x <= emoji[-1]]
    assert hebrew, "the Hebrew text was not drawn"
    assert emoji[-1] < min(hebrew), "the emoji ends a right-to-left line: it belongs on the left"


def test_arabic_is_still_shaped_right_to_left(noto: FontSet) -> None:
    laid_out = block(noto, "مرحبا بالعالم", size=30)

    assert laid_out.lines[0].direction == "rtl"
    assert not laid_out.missing
    # Shaped Arabic joins its letters: narrower than the letters measured one by one
    font = load_font(False, 30, fonts=noto)
    joined = measure(font, "مرحبا", "rtl", fonts=noto)
    assert joined < sum(measure(font, char, "rtl", fonts=noto) for char in "مرحبا")


# -- characters no font covers -------------------------------------------------------

def test_a_character_no_font_covers_is_reported(noto: FontSet) -> None:
    laid_out = block(noto, "Tap \ue000 to start")

    assert laid_out.missing == ("\ue000",)
    warning = missing_glyphs_warning("intro", [laid_out, None])
    assert warning is not None
    assert warning["code"] == "missing_glyphs" and warning["step"] == "intro"
    assert "U+E000" in warning["message"] and "intro" in warning["message"]


def test_covered_text_has_no_warning(noto: FontSet) -> None:
    title, text = block(noto, CJK_TITLE), block(noto, "Team 👩\u200d💻🧑🏿\u200d🚀, flags 🇧🇷🇰🇷, thumbs 👍🏻")

    assert title.missing == () and text.missing == ()
    assert missing_glyphs_warning("intro", [title, text]) is None


def test_without_noto_cjk_lays_out_and_is_reported(dejavu_only: FontSet) -> None:
    laid_out = block(dejavu_only, CJK_TITLE, size=20, width=120, height=400)

    assert len(laid_out.lines) > 1
    assert set(CJK_TITLE) - {"："} <= set(laid_out.missing)
    warning = missing_glyphs_warning("chapter-3", [laid_out])
    assert warning is not None and "U+7B2C" in warning["message"]  # 第


def test_without_any_font_pillows_own_font_draws_latin(tmp_path: Path) -> None:
    bare = FontSet.discover([], system=False)

    laid_out = block(bare, "Hello 東京", size=20)
    frame = drawn(laid_out, width=400)

    assert ink_box(frame)
    assert laid_out.missing == ("東", "京")


def test_default_font_set_is_built_once() -> None:
    assert fonts.default_font_set() is fonts.default_font_set()
