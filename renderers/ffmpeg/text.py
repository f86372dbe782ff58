"""Text: fonts, wrapping and drawing that never leaves its box.

Fonts are DejaVu Sans (regular for text, bold for titles) when the system has
it, else Pillow's own default font. With libraqm (Pillow's wheels ship it)
text is shaped and laid out right to left where it should be (Arabic,
Hebrew); without it, it is drawn unshaped, which is ugly but never a crash.
Lines wrap at spaces, words wider than a line break between characters,
text that still does not fit shrinks, then ends in an ellipsis, and every
block is drawn through a mask the size of its box, so nothing can spill.
"""

from __future__ import annotations

import functools
import math
import os
import unicodedata
from dataclasses import dataclass
from typing import Callable, Union

import PIL
from PIL import Image, ImageDraw, ImageFont, features

#: Where to look for fonts, in order; the first file found wins.
FONT_DIRS = (
    "/usr/share/fonts/truetype/dejavu",
    "/usr/share/fonts/dejavu",
    "/usr/share/fonts/TTF",
    "/usr/share/fonts/truetype",
    "/usr/local/share/fonts",
    "/Library/Fonts",
    "C:/Windows/Fonts",
)
FONT_FILES = {False: ("DejaVuSans.ttf",), True: ("DejaVuSans-Bold.ttf", "DejaVuSans.ttf")}
#: Line height as a multiple of the font's ascent + descent.
LINE_SPACING = 1.15
#: Each try at fitting text shrinks the font by this factor.
SHRINK = 0.85
ELLIPSIS = "…"

_ZERO_WIDTH_JOINERS = {"\u200d", "\ufe0e", "\ufe0f"}

Font = Union[ImageFont.FreeTypeFont, ImageFont.ImageFont]


@functools.lru_cache(maxsize=2)
def font_path(bold: bool) -> str | None:
    for directory in FONT_DIRS:
        for name in FONT_FILES[bold]:
            path = os.path.join(directory, name)
            if os.path.isfile(path):
                return path
    return None


@functools.lru_cache(maxsize=1)
def has_raqm() -> bool:
    return bool(features.check_feature("raqm"))


@functools.lru_cache(maxsize=64)
def load_font(bold: bool, size: int) -> Font:
    engine = ImageFont.Layout.RAQM if has_raqm() else ImageFont.Layout.BASIC
    path = font_path(bold)
    if path is not None:
        try:
            return ImageFont.truetype(path, size, layout_engine=engine)
        except OSError:
            pass
    return ImageFont.load_default(size=size)


def font_identity() -> dict[str, object]:
    """What decides how text looks, for cache keys."""
    identity: dict[str, object] = {"pillow": PIL.__version__, "raqm": has_raqm()}
    for bold in (False, True):
        path = font_path(bold)
        identity["bold" if bold else "regular"] = [path, os.path.getsize(path)] if path else "pillow-default"
    return identity


def clean(text: str) -> str:
    """Text safe to shape: no lone surrogates, no control characters but newlines."""
    text = text.encode("utf-8", "replace").decode("utf-8")
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    return "".join(c for c in text if c == "\n" or unicodedata.category(c) not in ("Cc", "Cs", "Co", "Cn"))


def direction(text: str) -> str:
    """The paragraph's direction, from its first strong character (as in UAX #9)."""
    for char in text:
        kind = unicodedata.bidirectional(char)
        if kind in ("R", "AL"):
            return "rtl"
        if kind == "L":
            return "ltr"
    return "ltr"


@dataclass(frozen=True)
class Line:
    text: str
    direction: str


@dataclass(frozen=True)
class TextBlock:
    lines: tuple[Line, ...]
    bold: bool
    size: int
    line_height: int

    @property
    def height(self) -> int:
        return self.line_height * len(self.lines)

    @property
    def font(self) -> Font:
        return load_font(self.bold, self.size)


def measure(font: Font, text: str, line_direction: str) -> float:
    if has_raqm() and isinstance(font, ImageFont.FreeTypeFont):
        return font.getlength(text, direction=line_direction)
    return font.getlength(text)


def line_height(font: Font) -> int:
    if isinstance(font, ImageFont.FreeTypeFont):
        ascent, descent = font.getmetrics()
        return max(1, math.ceil((ascent + descent) * LINE_SPACING))
    return max(1, math.ceil(font.getbbox("Ag")[3] * LINE_SPACING))


def layout_block(
    text: str | None, *, bold: bool, size: int, min_size: int, max_width: int, max_height: int
) -> TextBlock | None:
    """Wrap ``text`` into at most ``max_width`` × ``max_height`` pixels."""
    text = clean(text or "").strip()
    if not text or max_width < 1 or max_height < 1:
        return None
    while True:
        font = load_font(bold, size)
        height = line_height(font)
        max_lines = max_height // height
        lines = wrap(text, font, max_width)
        if max_lines >= 1 and len(lines) <= max_lines:
            return TextBlock(tuple(lines), bold, size, height)
        smaller = max(min_size, int(size * SHRINK))
        if smaller == size:
            if max_lines < 1:
                return None
            return TextBlock(tuple(_truncate(lines, max_lines, font, max_width)), bold, size, height)
        size = smaller


def wrap(text: str, font: Font, max_width: int) -> list[Line]:
    lines: list[Line] = []
    for paragraph in text.split("\n"):
        paragraph_direction = direction(paragraph)

        def fits(candidate: str) -> bool:
            return measure(font, candidate, paragraph_direction) <= max_width

        current = ""
        for word in paragraph.split():
            candidate = f"{current} {word}" if current else word
            if fits(candidate):
                current = candidate
                continue
            if current:
                lines.append(Line(current, paragraph_direction))
            while not fits(word):
                cut = _longest_fitting_prefix(word, fits)
                lines.append(Line(word[:cut], paragraph_direction))
                word = word[cut:]
            current = word
        if current:
            lines.append(Line(current, paragraph_direction))
    return lines


def _longest_fitting_prefix(word: str, fits: Callable[[str], bool]) -> int:
    """Longest prefix (cut between characters, not inside a cluster) that fits; at least one cluster."""
    cuts = [i for i in range(1, len(word)) if _can_break_before(word, i)]
    low, high = 0, len(cuts)  # cuts[:low] fit
    while low < high:
        middle = (low + high + 1) // 2
        if fits(word[: cuts[middle - 1]]):
            low = middle
        else:
            high = middle - 1
    if low:
        return cuts[low - 1]
    return cuts[0] if cuts else len(word)


def _can_break_before(word: str, index: int) -> bool:
    char, previous = word[index], word[index - 1]
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Mc", "Me"):
        return False
    return char not in _ZERO_WIDTH_JOINERS and previous not in _ZERO_WIDTH_JOINERS


def _truncate(lines: list[Line], max_lines: int, font: Font, max_width: int) -> list[Line]:
    kept = lines[:max_lines]
    if len(kept) == len(lines):
        return kept
    last = kept[-1]
    body = last.text
    while body and measure(font, body + ELLIPSIS, last.direction) > max_width:
        body = body[:-1]
    kept[-1] = Line(body.rstrip() + ELLIPSIS, last.direction)
    return kept


def draw_block(
    frame: Image.Image, block: TextBlock, box: tuple[int, int, int, int], fill: tuple[int, int, int]
) -> None:
    """Draw ``block`` centred line by line into ``box`` (x0, y0, x1, y1) of ``frame``."""
    x0, y0, x1, y1 = box
    width, height = x1 - x0, y1 - y0
    if width < 1 or height < 1:
        return
    mask = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(mask)
    font = block.font
    for number, line in enumerate(block.lines):
        line_width = measure(font, line.text, line.direction)
        x = (width - line_width) / 2
        y = number * block.line_height
        if has_raqm() and isinstance(font, ImageFont.FreeTypeFont):
            draw.text((x, y), line.text, fill=255, font=font, direction=line.direction)
        else:
            draw.text((x, y), line.text, fill=255, font=font)
    frame.paste(fill, box, mask)
