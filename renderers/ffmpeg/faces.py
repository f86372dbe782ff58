"""Font faces on this machine: where they are, what they are, and what they cover.

Faces come from fontconfig (:func:`fontconfig_faces`: one ``fc-list`` call
gives every face with its family, weight, slant, width, colour, bitmap size
and charset, which fontconfig keeps cached) or from walking folders
(:func:`scan_folder`, fontTools reading each file's names and OS/2 table).
A face's :class:`Coverage` is parsed from fontconfig's charset, or read from
its cmap with fontTools (:func:`cmap_coverage`), only when a character is
looked up in it. Pillow's own font (:func:`pillow_face`) is the last resort.
"""

from __future__ import annotations

import bisect
import io
import itertools
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import ImageFont

#: Where to look when fontconfig is not installed.
SYSTEM_FOLDERS = (
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "~/.local/share/fonts",
    "~/.fonts",
    "/Library/Fonts",
    "/System/Library/Fonts",
    "C:/Windows/Fonts",
)
FONT_SUFFIXES = (".ttf", ".otf", ".ttc", ".otc")
#: Seconds ``fc-list`` may take.
FC_LIST_TIMEOUT_S = 20.0
#: OpenType weight classes: from this one up a face is bold; what regular and bold text ask for.
BOLD_WEIGHT = 600
REGULAR_WEIGHT, BOLDFACE_WEIGHT = 400, 700
#: fontconfig's weight scale against OpenType's (FcWeightToOpenType's table).
_FC_TO_OPENTYPE = ((0, 100), (40, 200), (50, 300), (55, 350), (75, 380), (80, 400), (100, 500), (180, 600),
                   (200, 700), (205, 800), (210, 900), (215, 1000))
#: Marks Pillow's built-in font, which has no file.
PILLOW_DEFAULT = "<pillow-default>"

_FC_FORMAT = "%{index}|%{weight}|%{slant}|%{width}|%{color}|%{pixelsize}|%{family[0]}|%{charset}|%{file}\\n"
_REGION = re.compile(r"\b(JP|KR|SC|TC|HK)\b")
_FIRST_NUMBER = re.compile(r"\d+(?:\.\d+)?")


@dataclass(frozen=True)
class Face:
    """One face of a font file."""

    path: str
    #: Face index in a collection (``.ttc``); fontconfig's named-instance bits included.
    index: int
    family: str
    #: OpenType weight class: 400 regular, 700 bold.
    weight: int
    #: Italic or oblique.
    slanted: bool
    #: Condensed or expanded.
    narrow_or_wide: bool
    #: Draws in its own colours (CBDT, sbix or COLR glyphs).
    color: bool
    #: A bitmap face's only size, in pixels (109 for Noto Color Emoji); ``None`` when scalable.
    native_size: int | None
    #: ``dirs`` (PREVIEW_FONT_DIRS), ``fontconfig``, ``folders`` (no fontconfig) or ``pillow``.
    source: str

    def __hash__(self) -> int:  # faces key many caches: hash the file and face index only
        return hash((self.path, self.index))

    @property
    def bold(self) -> bool:
        return self.weight >= BOLD_WEIGHT

    @property
    def region(self) -> str | None:
        """JP, KR, SC, TC or HK for a CJK face named after its region, else ``None``."""
        match = _REGION.search(self.family)
        return match.group(1) if match else None

    @property
    def is_emoji(self) -> bool:
        return self.color or "emoji" in self.family.lower()


class Coverage:
    """The code points a face has glyphs for, as sorted inclusive ranges."""

    def __init__(self, ranges: Iterable[tuple[int, int]]) -> None:
        ordered = sorted(ranges)
        self._starts = [start for start, _ in ordered]
        self._ends = [end for _, end in ordered]

    @classmethod
    def from_code_points(cls, code_points: Iterable[int]) -> Coverage:
        ranges: list[tuple[int, int]] = []
        for code_point in sorted(set(code_points)):
            if ranges and ranges[-1][1] == code_point - 1:
                ranges[-1] = (ranges[-1][0], code_point)
            else:
                ranges.append((code_point, code_point))
        return cls(ranges)

    @classmethod
    def from_fontconfig(cls, charset: str) -> Coverage:
        """Parse fontconfig's ``%{charset}``: hexadecimal code points and ranges, ``20-7e a0``."""
        coverage = cls(())
        starts, ends = coverage._starts, coverage._ends
        for token in charset.split():  # already in order
            start, _, end = token.partition("-")
            first = int(start, 16)
            starts.append(first)
            ends.append(int(end, 16) if end else first)
        return coverage

    def __contains__(self, code_point: int) -> bool:
        position = bisect.bisect_right(self._starts, code_point) - 1
        return position >= 0 and code_point <= self._ends[position]


def fontconfig_faces() -> dict[Face, str] | None:
    """fontconfig's faces with their charsets, or ``None`` when fontconfig is not installed or fails."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return None
    try:
        completed = subprocess.run(
            [fc_list, "--format", _FC_FORMAT], capture_output=True, timeout=FC_LIST_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        print(f"fonts: fc-list failed ({error}); scanning the usual folders instead", file=sys.stderr)
        return None
    if completed.returncode != 0:
        print(f"fonts: fc-list exited with status {completed.returncode}; scanning the usual folders instead",
              file=sys.stderr)
        return None
    faces: dict[Face, str] = {}
    for line in completed.stdout.decode("utf-8", "replace").splitlines():
        parts = line.split("|", 8)
        if len(parts) != 9 or not parts[8].lower().endswith(FONT_SUFFIXES):
            continue
        index, weight, slant, width, color, pixel_size, family, charset, path = parts
        face = Face(
            path=path,
            index=int(index or 0),
            family=family,
            weight=_opentype_weight(_number(weight, 80)),
            slanted=_number(slant, 0) != 0,
            narrow_or_wide=_number(width, 100) != 100,
            color=color.strip().lower() == "true",
            native_size=int(_number(pixel_size, 0)) or None,
            source="fontconfig",
        )
        faces.setdefault(face, charset)
    return dict(sorted(faces.items(), key=lambda item: (item[0].path, item[0].index)))


def _opentype_weight(fc_weight: float) -> int:
    """fontconfig's weight (80 regular, 200 bold) as an OpenType weight class (400, 700)."""
    points = _FC_TO_OPENTYPE
    if fc_weight <= points[0][0]:
        return points[0][1]
    for (fc_low, ot_low), (fc_high, ot_high) in itertools.pairwise(points):
        if fc_weight <= fc_high:
            return round(ot_low + (ot_high - ot_low) * (fc_weight - fc_low) / (fc_high - fc_low))
    return points[-1][1]


def file_id(path: str) -> tuple[int, int] | str:
    """The file behind ``path`` (device and inode), so a font linked into two folders counts once."""
    try:
        stat = os.stat(path)
    except OSError:
        return path
    return (stat.st_dev, stat.st_ino)


def _number(text: str, default: float) -> float:
    match = _FIRST_NUMBER.search(text)
    return float(match.group()) if match else default


def scan_folder(folder: Path, source: str) -> list[Face]:
    """Every face of every font file below ``folder``, in path order, read with fontTools."""
    if not folder.is_dir():
        return []
    files: list[str] = []
    for root, directories, names in os.walk(folder, followlinks=True):
        directories.sort()
        files.extend(os.path.join(root, name) for name in sorted(names) if name.lower().endswith(FONT_SUFFIXES))
    faces: list[Face] = []
    for path in sorted(files):
        try:
            faces.extend(_read_faces(path, source))
        except Exception as error:  # fontTools raises many kinds on a broken file: skip it, say so
            print(f"fonts: skipped {path}: {type(error).__name__}: {error}", file=sys.stderr)
    return faces


def _read_faces(path: str, source: str) -> list[Face]:
    from fontTools.ttLib import TTCollection, TTFont

    if path.lower().endswith((".ttc", ".otc")):
        with TTCollection(path, lazy=True) as collection:
            return [_face_of(font, path, index, source) for index, font in enumerate(collection.fonts)]
    with TTFont(path, lazy=True) as font:
        return [_face_of(font, path, 0, source)]


def _face_of(font: Any, path: str, index: int, source: str) -> Face:
    """The :class:`Face` a fontTools ``TTFont`` describes."""
    os2 = font["OS/2"] if "OS/2" in font else None
    selection = getattr(os2, "fsSelection", 0)
    family = font["name"].getBestFamilyName() if "name" in font else None
    return Face(
        path=path,
        index=index,
        family=str(family or Path(path).stem),
        weight=int(getattr(os2, "usWeightClass", REGULAR_WEIGHT)),
        slanted=bool(selection & 0x01) or bool(selection & 0x200),
        narrow_or_wide=getattr(os2, "usWidthClass", 5) != 5,
        color=any(table in font for table in ("CBDT", "sbix", "COLR")),
        native_size=_strike_size(font),
        source=source,
    )


def _strike_size(font: Any) -> int | None:
    """The largest bitmap strike of a bitmap-only face (a fontTools ``TTFont``), in pixels; ``None`` if scalable."""
    if "glyf" in font or "CFF " in font or "CFF2" in font:
        return None
    sizes: list[int] = []
    if "CBLC" in font:
        sizes = [int(strike.bitmapSizeTable.ppemY) for strike in font["CBLC"].strikes]
    elif "sbix" in font:
        sizes = [int(ppem) for ppem in font["sbix"].strikes]
    return max(sizes) if sizes else None


def cmap_coverage(face: Face) -> Coverage:
    """What ``face`` covers, from its cmap (fontTools)."""
    from fontTools.ttLib import TTFont

    if face.source == "pillow":
        font = ImageFont.load_default(size=12)
        source = getattr(font, "path", None)
        if not isinstance(source, io.BytesIO):  # no FreeType: Pillow's bitmap font, printable ASCII
            return Coverage([(0x20, 0x7E)])
        source.seek(0)
        data: object = io.BytesIO(source.read())
        index = 0
    else:
        data, index = face.path, face.index
    try:
        with TTFont(data, fontNumber=index if face.path.lower().endswith((".ttc", ".otc")) else -1, lazy=True) as font:
            cmap = font.getBestCmap() or {}
    except Exception as error:  # a broken cmap: the face covers nothing, and the render goes on
        print(f"fonts: cannot read the cmap of {face.path}: {type(error).__name__}: {error}", file=sys.stderr)
        return Coverage([])
    return Coverage.from_code_points(cmap)


def pillow_face() -> Face:
    return Face(
        path=PILLOW_DEFAULT, index=0, family="Pillow default", weight=REGULAR_WEIGHT, slanted=False,
        narrow_or_wide=False,
        color=False, native_size=None, source="pillow",
    )
