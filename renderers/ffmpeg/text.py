"""Text: runs of fonts, line breaking and drawing that never leaves its box.

Each paragraph is cut into grapheme clusters (so an emoji ZWJ sequence, a flag,
a skin tone or a base letter with its marks stays one piece) and each cluster
gets a face from the font set's fallback chain (:mod:`renderers.ffmpeg.fonts`);
neighbouring clusters of one face form a run. With libraqm (Pillow's wheels
ship it) each run is shaped, Arabic and Hebrew right to left, and runs are put
in visual order; without it text is drawn unshaped, which is ugly but never a
crash.

Lines wrap at spaces and, in CJK text and between emoji, between characters,
with the kinsoku rules: no line starts with closing punctuation or a small
kana (``、。」）！？ー``…) and none ends with an opening bracket (``「（``…).
A word wider than a line breaks between clusters; text that still does not
fit shrinks, then ends in an ellipsis.

Text is drawn in the step's text colour through a mask; colour emoji (a bitmap
face drawn at its native size, 109 px for Noto Color Emoji) are scaled to the
text's size and composited in their own colours. Everything is drawn inside
the block's box, so nothing can spill. Characters no face covers are drawn as
the primary face's box and listed in :attr:`TextBlock.missing`, which the
render turns into a ``missing_glyphs`` warning (:func:`missing_glyphs_warning`).
"""

from __future__ import annotations

import functools
import itertools
import math
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from PIL import Image, ImageDraw, ImageFont

from renderers.ffmpeg.faces import Face
from renderers.ffmpeg.fonts import Font, FontSet, default_font_set, load
from renderers.ffmpeg.scripts import clusters, is_ignorable, language_hint, may_break_between

#: Line height as a multiple of the tallest face's ascent + descent.
LINE_SPACING = 1.15
#: Each try at fitting text shrinks the font by this factor.
SHRINK = 0.85
ELLIPSIS = "…"
#: Code points listed in one warning's message at most.
MAX_LISTED_CODE_POINTS = 20


def clean(text: str) -> str:
    """Text safe to shape: no lone surrogates, no control characters but newlines, tabs as spaces.

    Private-use and unassigned code points are kept: a font may cover them, and
    if none does they are reported, not dropped silently.
    """
    text = text.encode("utf-8", "replace").decode("utf-8")
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    return "".join(c for c in text if c == "\n" or unicodedata.category(c) not in ("Cc", "Cs"))


def direction(text: str) -> str:
    """The paragraph's direction, from its first strong character (as in UAX #9)."""
    return _strong_direction(text) or "ltr"


def _strong_direction(text: str) -> str | None:
    for char in text:
        kind = unicodedata.bidirectional(char)
        if kind in ("R", "AL"):
            return "rtl"
        if kind == "L":
            return "ltr"
    return None


@dataclass(frozen=True)
class Run:
    """Neighbouring clusters drawn with one face, shaped in one ``direction``."""

    face: Face
    text: str
    direction: str


@dataclass(frozen=True)
class Line:
    text: str
    direction: str
    #: In logical order; :func:`visual_order` gives the drawing order.
    runs: tuple[Run, ...] = ()


@dataclass(frozen=True)
class TextBlock:
    lines: tuple[Line, ...]
    bold: bool
    size: int
    line_height: int
    #: Pixels from a line's top to its baseline.
    ascent: int = 0
    #: Characters no installed face covers, in order of first appearance (drawn as boxes).
    missing: tuple[str, ...] = ()
    fonts: FontSet | None = field(default=None, compare=False, repr=False)

    @property
    def height(self) -> int:
        return self.line_height * len(self.lines)

    @property
    def font(self) -> Font:
        """The primary font at the block's size."""
        return load_font(self.bold, self.size, fonts=self.fonts)


def font_identity() -> dict[str, object]:
    """What decides how text looks, for cache keys: the font set's faces and their files' sizes and mtimes."""
    return default_font_set().identity()


def load_font(bold: bool, size: int, *, fonts: FontSet | None = None) -> Font:
    """The primary face (the one Latin text is drawn with) at ``size`` pixels."""
    return load((fonts or default_font_set()).primary(bold), size)


def measure(font: Font, text: str, line_direction: str, *, fonts: FontSet | None = None) -> float:
    """Width of ``text`` in pixels, drawn from ``font``'s face and falling back by glyph coverage."""
    font_set = fonts or default_font_set()
    face = font_set.face_of(font)
    if face is None:
        return _plain_length(font, text, line_direction)
    size = getattr(font, "size", 10)
    paragraph = _Paragraph(text, face.bold, font_set)
    return paragraph.width(0, len(paragraph.clusters), size, line_direction)


def missing_glyphs_warning(step_id: str, blocks: Iterable[TextBlock | None]) -> dict[str, str] | None:
    """The ``missing_glyphs`` warning of a step whose ``blocks`` (title, text) have characters no face covers."""
    missing: dict[str, None] = {}
    for block in blocks:
        if block is not None:
            missing.update(dict.fromkeys(block.missing))
    if not missing:
        return None
    listed = [f"U+{ord(char):04X}" for char in list(missing)[:MAX_LISTED_CODE_POINTS]]
    more = len(missing) - len(listed)
    code_points = ", ".join(listed) + (f" and {more} more" if more else "")
    return {
        "code": "missing_glyphs",
        "message": f"step '{step_id}': no installed font covers {code_points}; drawn as empty boxes "
                   "(install fonts that cover them, or add their folder to PREVIEW_FONT_DIRS)",
        "step": step_id,
    }


# -- layout ----------------------------------------------------------------------

class _Paragraph:
    """A paragraph cut into clusters, each with its face and where lines may break."""

    def __init__(self, text: str, bold: bool, fonts: FontSet) -> None:
        self.text = text
        self.direction = direction(text)
        self.fonts = fonts
        primary = fonts.primary(bold)
        simple = _simple_characters(fonts, bold)
        self.plain = text.isascii() and simple.issuperset(text)
        if self.plain:
            # Latin fast path: one cluster per character, all in the primary face
            self.clusters = list(text)
            self.faces: list[Face] = [primary] * len(text)
            self.missing: list[str] = []
        else:
            self.clusters = clusters(text)
            self.faces, self.missing = self._choose_faces(bold, fonts, primary)
        self.offsets: Sequence[int] = range(len(text) + 1)
        self.boundaries = [0, len(text)]
        if not self.plain:
            offsets = [0]
            for cluster in self.clusters:
                offsets.append(offsets[-1] + len(cluster))
            self.offsets = offsets
            self.boundaries = [0, *(i for i in range(1, len(self.faces)) if self.faces[i] != self.faces[i - 1])]
            self.boundaries.append(len(self.clusters))

    def _choose_faces(self, bold: bool, fonts: FontSet, primary: Face) -> tuple[list[Face], list[str]]:
        lang = language_hint(self.text)
        faces: list[Face] = []
        missing: list[str] = []
        previous: Face | None = None
        for cluster in self.clusters:
            face = fonts.face_for(cluster, bold=bold, lang=lang, previous=previous)
            if face is None:
                missing.extend(c for c in cluster if not is_ignorable(c) and not c.isspace())
                face = previous or primary
            else:
                missing.extend(
                    c for c in cluster
                    if not is_ignorable(c) and not c.isspace() and not fonts.covers(face, ord(c))
                    and fonts.face_for(c, bold=bold, lang=lang) is None
                )
            faces.append(face)
            previous = face
        return faces, missing

    def slice_text(self, begin: int, end: int) -> str:
        return self.text[self.offsets[begin]:self.offsets[end]]

    def runs(self, begin: int, end: int, line_direction: str) -> list[Run]:
        """The runs of clusters ``begin:end`` in logical order, each with the direction it is shaped in."""
        if len(self.boundaries) == 2:  # one face: one run
            return [Run(self.faces[0], self.slice_text(begin, end), line_direction)] if end > begin else []
        cuts = [begin, *(b for b in self.boundaries if begin < b < end), end]
        pieces = [(self.faces[a], self.slice_text(a, b)) for a, b in itertools.pairwise(cuts) if b > a]
        return _resolve_directions(pieces, line_direction)

    def width(self, begin: int, end: int, size: int, line_direction: str) -> float:
        if self.plain:  # one face, not colour: measured directly (the common case, kept fast)
            if end <= begin:
                return 0.0
            return _plain_length(load(self.faces[0], size), self.text[begin:end], line_direction)
        return sum(run_width(run, size) for run in self.runs(begin, end, line_direction))

    def atoms(self) -> list[tuple[int, int]]:
        """Pieces a line may not break inside, as cluster ranges: words, cut between CJK characters and emoji."""
        atoms: list[tuple[int, int]] = []
        if self.plain:  # breaks at spaces only
            position = 0
            for word in self.text.split(" "):
                if word:
                    atoms.append((position, position + len(word)))
                position += len(word) + 1
            return atoms
        start: int | None = None
        pieces = self.clusters
        for i, cluster in enumerate(pieces):
            if cluster.isspace():
                if start is not None:
                    atoms.append((start, i))
                    start = None
                continue
            if start is None:
                start = i
            elif may_break_between(pieces[i - 1], cluster):
                atoms.append((start, i))
                start = i
        if start is not None:
            atoms.append((start, len(pieces)))
        return atoms


@functools.lru_cache(maxsize=8)
def _simple_characters(fonts: FontSet, bold: bool) -> frozenset[str]:
    """Printable ASCII the primary face covers: text made only of these takes the fast path."""
    primary = fonts.primary(bold)
    return frozenset(chr(c) for c in range(0x20, 0x7F) if fonts.covers(primary, c))


def _resolve_directions(pieces: Sequence[tuple[Face, str]], line_direction: str) -> list[Run]:
    """Give each run a direction: its own strong one; neutrals take their neighbours' when they agree."""
    if len(pieces) == 1:
        face, text = pieces[0]
        return [Run(face, text, line_direction)]
    strong = [_strong_direction(text) for _, text in pieces]
    resolved = []
    for i, own in enumerate(strong):
        if own is None:
            before = next((d for d in reversed(strong[:i]) if d), None)
            after = next((d for d in strong[i + 1:] if d), None)
            own = before if before is not None and before == after else line_direction
        resolved.append(own)
    return [Run(face, text, run_direction) for (face, text), run_direction in zip(pieces, resolved, strict=True)]


def visual_order(runs: Sequence[Run], line_direction: str) -> list[Run]:
    """Runs from left to right.

    In a right-to-left line the groups of one direction go right to left; inside
    a right-to-left group, so do its runs.
    """
    groups: list[list[Run]] = []
    for run in runs:
        if groups and groups[-1][0].direction == run.direction:
            groups[-1].append(run)
        else:
            groups.append([run])
    if line_direction == "rtl":
        groups.reverse()
    return [run for group in groups for run in (reversed(group) if group[0].direction == "rtl" else group)]


def run_width(run: Run, size: int) -> float:
    """Advance of ``run`` at ``size`` pixels (a colour bitmap face measured at its native size and scaled)."""
    native = run.face.native_size if run.face.color and run.face.native_size else size
    length = _plain_length(load(run.face, native), run.text, run.direction)
    return length * size / native


def _shapes(font: Font) -> bool:
    """Whether ``font`` is laid out by libraqm (it then takes a direction)."""
    return isinstance(font, ImageFont.FreeTypeFont) and font.layout_engine == ImageFont.Layout.RAQM


def _plain_length(font: Font, text: str, line_direction: str) -> float:
    if _shapes(font):
        return font.getlength(text, direction=line_direction)
    return font.getlength(text)


def _metrics(faces: Iterable[Face], size: int) -> tuple[int, int]:
    """Ascent and descent in pixels that hold every face of ``faces`` at ``size``."""
    ascent = descent = 0.0
    for face in set(faces):
        native = face.native_size if face.color and face.native_size else size
        font = load(face, native)
        if isinstance(font, ImageFont.FreeTypeFont):
            face_ascent, face_descent = font.getmetrics()
        else:
            face_ascent, face_descent = font.getbbox("Ag")[3], 0
        ascent = max(ascent, face_ascent * size / native)
        descent = max(descent, face_descent * size / native)
    return math.ceil(ascent), math.ceil(descent)


def layout_block(
    text: str | None, *, bold: bool, size: int, min_size: int, max_width: int, max_height: int,
    fonts: FontSet | None = None,
) -> TextBlock | None:
    """Wrap ``text`` into at most ``max_width`` × ``max_height`` pixels, shrinking to ``min_size`` if need be.

    Returns ``None`` when there is no text or no room for one line.
    """
    font_set = fonts or default_font_set()
    text = clean(text or "").strip()
    if not text or max_width < 1 or max_height < 1:
        return None
    paragraphs = [_Paragraph(" ".join(part.split()), bold, font_set) for part in text.split("\n")]
    missing = tuple(dict.fromkeys(char for paragraph in paragraphs for char in paragraph.missing))
    faces = {p.faces[b] for p in paragraphs for b in p.boundaries[:-1]} or {font_set.primary(bold)}
    while True:
        ascent, descent = _metrics(faces, size)
        height = max(1, math.ceil((ascent + descent) * LINE_SPACING))
        max_lines = max_height // height
        lines = [line for paragraph in paragraphs for line in _wrap(paragraph, size, max_width)]
        if max_lines >= 1 and len(lines) <= max_lines:
            return TextBlock(tuple(lines), bold, size, height, ascent, missing, font_set)
        smaller = max(min_size, int(size * SHRINK))
        if smaller == size:
            if max_lines < 1:
                return None
            kept = _truncate(paragraphs, lines, max_lines, size, max_width, bold)
            return TextBlock(tuple(kept), bold, size, height, ascent, missing, font_set)
        size = smaller


def _wrap(paragraph: _Paragraph, size: int, max_width: int) -> list[Line]:
    """Greedy line breaking of ``paragraph`` at its atoms' edges; atoms wider than a line break between clusters."""
    line_direction = paragraph.direction

    def fits(begin: int, end: int) -> bool:
        return paragraph.width(begin, end, size, line_direction) <= max_width

    spans: list[tuple[int, int]] = []
    current: tuple[int, int] | None = None
    for begin, end in paragraph.atoms():
        if current is not None and fits(current[0], end):
            current = (current[0], end)
            continue
        if current is not None:
            spans.append(current)
        while begin < end and not fits(begin, end):
            cut = _longest_fitting_prefix(begin, end, fits)
            spans.append((begin, cut))
            begin = cut
        current = (begin, end) if begin < end else None
    if current is not None:
        spans.append(current)
    return [_line(paragraph, begin, end) for begin, end in spans]


def _line(paragraph: _Paragraph, begin: int, end: int, suffix: Run | None = None) -> Line:
    runs = paragraph.runs(begin, end, paragraph.direction)
    if suffix is not None:
        pieces = [(run.face, run.text) for run in runs]
        if pieces and pieces[-1][0] == suffix.face:
            pieces[-1] = (suffix.face, pieces[-1][1] + suffix.text)
        else:
            pieces.append((suffix.face, suffix.text))
        runs = _resolve_directions(pieces, paragraph.direction)
    return Line("".join(run.text for run in runs), paragraph.direction, tuple(runs))


def _longest_fitting_prefix(begin: int, end: int, fits: Callable[[int, int], bool]) -> int:
    """End of the longest run of clusters from ``begin`` that fits; at least one cluster."""
    low, high = begin + 1, end  # clusters[begin:low] always taken
    while low < high:
        middle = (low + high + 1) // 2
        if fits(begin, middle):
            low = middle
        else:
            high = middle - 1
    return low


def _truncate(paragraphs: list[_Paragraph], lines: list[Line], max_lines: int, size: int, max_width: int,
              bold: bool) -> list[Line]:
    kept = lines[:max_lines]
    if len(kept) == len(lines):
        return kept
    last = kept[-1]
    paragraph = _Paragraph(last.text, bold, paragraphs[0].fonts)
    paragraph.direction = last.direction
    font_set = paragraph.fonts
    end = len(paragraph.clusters)
    while True:
        while end > 0 and paragraph.clusters[end - 1].isspace():
            end -= 1
        previous = paragraph.faces[end - 1] if end else None
        face = font_set.face_for(ELLIPSIS, bold=bold, lang="", previous=previous) or font_set.primary(bold)
        ellipsis = Run(face, ELLIPSIS, last.direction)
        width = paragraph.width(0, end, size, last.direction) if end else 0.0
        if end == 0 or width + run_width(ellipsis, size) <= max_width:
            break
        end -= 1
    kept[-1] = _line(paragraph, 0, end, suffix=ellipsis)
    return kept


# -- drawing ---------------------------------------------------------------------

def draw_block(
    frame: Image.Image, block: TextBlock, box: tuple[int, int, int, int], fill: tuple[int, int, int]
) -> None:
    """Draw ``block`` centred line by line into ``box`` (x0, y0, x1, y1) of ``frame`` (RGB).

    Text takes ``fill``; colour emoji keep their own colours.
    """
    x0, y0, x1, y1 = box
    width, height = x1 - x0, y1 - y0
    if width < 1 or height < 1:
        return
    mask = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(mask)
    colour: Image.Image | None = None
    for number, line in enumerate(block.lines):
        runs = visual_order(line.runs, line.direction)
        widths = [run_width(run, block.size) for run in runs]
        x = (width - sum(widths)) / 2
        top = number * block.line_height
        baseline = top + block.ascent
        for run, run_advance in zip(runs, widths, strict=True):
            if run.face.color:
                if colour is None:
                    colour = Image.new("RGBA", (width, height), (0, 0, 0, 0))
                _draw_colour_run(colour, run, block.size, x, baseline)
            else:
                _draw_text_run(draw, run, block.size, x, top, baseline)
            x += run_advance
    frame.paste(fill, box, mask)
    if colour is not None:
        frame.paste(colour.convert("RGB"), (x0, y0), colour)


def _draw_text_run(draw: ImageDraw.ImageDraw, run: Run, size: int, x: float, top: int, baseline: int) -> None:
    font = load(run.face, size)
    if not isinstance(font, ImageFont.FreeTypeFont):  # Pillow's bitmap font: no anchors, no shaping
        draw.text((x, top), run.text, fill=255, font=font)
    elif _shapes(font):
        draw.text((x, baseline), run.text, fill=255, font=font, anchor="ls", direction=run.direction)
    else:
        draw.text((x, baseline), run.text, fill=255, font=font, anchor="ls")


def _draw_colour_run(layer: Image.Image, run: Run, size: int, x: float, baseline: int) -> None:
    image, ascent = _colour_run_image(run, size)
    left, top = round(x), baseline - ascent
    # Clip to the layer: alpha_composite wants the source inside it
    crop = (max(0, -left), max(0, -top), min(image.width, layer.width - left), min(image.height, layer.height - top))
    if crop[0] >= crop[2] or crop[1] >= crop[3]:
        return
    layer.alpha_composite(image.crop(crop), (left + crop[0], top + crop[1]))


@functools.lru_cache(maxsize=256)
def _colour_run_image(run: Run, size: int) -> tuple[Image.Image, int]:
    """``run`` drawn in its own colours, scaled to ``size``; with its ascent in pixels."""
    native = run.face.native_size or size
    font = load(run.face, native)
    if isinstance(font, ImageFont.FreeTypeFont):
        native_ascent, native_descent = font.getmetrics()
    else:
        native_ascent, native_descent = font.getbbox("Ag")[3], 0
    native_width = max(1, math.ceil(_plain_length(font, run.text, run.direction)))
    image = Image.new("RGBA", (native_width, native_ascent + native_descent), (0, 0, 0, 0))
    ImageDraw.Draw(image).text((0, native_ascent), run.text, font=font, anchor="ls", embedded_color=True,
                               direction=run.direction if _shapes(font) else None)
    if native == size:
        return image, native_ascent
    scale = size / native
    scaled_size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    # Premultiplied while resampling, so transparent pixels do not darken the edges
    scaled = image.convert("RGBa").resize(scaled_size, Image.Resampling.LANCZOS).convert("RGBA")
    return scaled, round(native_ascent * scale)

