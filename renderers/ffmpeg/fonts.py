"""Fonts: the font set of a render, and which face draws each grapheme cluster.

The font set is every face found in ``PREVIEW_FONT_DIRS`` (colon-separated
folders, walked recursively, searched first) and, unless
``PREVIEW_SYSTEM_FONTS=0``, the system's: fontconfig's list (``fc-list``) when
fontconfig is installed, else the usual font folders. Pillow's own font is the
last resort, so text always draws.

What a face covers (:mod:`renderers.ffmpeg.faces`) is read only when a
character gets that far down the chain, so Latin text costs one lookup per
distinct character.

A grapheme cluster is drawn by the first face that covers all of it, in this
order (:meth:`FontSet.chain`):

1. for an emoji cluster, the colour emoji faces;
2. the faces of ``PREVIEW_FONT_DIRS``;
3. the system's faces: the primary face (DejaVu Sans, else Noto Sans…) first,
   then sans before serif before mono, the wanted weight first, upright and
   normal width first; for CJK characters the CJK faces come first, the one
   of the paragraph's language (JP, KR, SC, TC, HK) before the others (kana
   always prefer JP, hangul KR);
4. emoji faces, then Pillow's font.

Colour bitmap faces (Noto Color Emoji's CBDT) draw only at their native size
(:attr:`Face.native_size`); the text module scales them to the line.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

import PIL
from PIL import ImageFont, features

from renderers.ffmpeg.faces import (
    BOLDFACE_WEIGHT,
    REGULAR_WEIGHT,
    SYSTEM_FOLDERS,
    Coverage,
    Face,
    cmap_coverage,
    file_id,
    fontconfig_faces,
    pillow_face,
    scan_folder,
)
from renderers.ffmpeg.scripts import cluster_kind, is_ignorable, is_neutral, script_language

#: Folders searched first, colon-separated (``os.pathsep``).
FONT_DIRS_ENV = "PREVIEW_FONT_DIRS"
#: ``0`` leaves out the system's fonts (fontconfig and the usual folders); ``1`` (default) uses them.
SYSTEM_FONTS_ENV = "PREVIEW_SYSTEM_FONTS"
#: Families tried as the primary face, in order: Latin text looks the same as before the fallback chain.
PRIMARY_FAMILIES = ("DejaVu Sans", "Noto Sans", "Liberation Sans", "Arial", "Helvetica")
#: Bumped whenever the choice of faces or the text layout changes rendered pixels (it is in every cache key).
TEXT_LAYOUT_VERSION = 2

_REGION_BY_LANG = {"ja": "JP", "ko": "KR", "zh-Hans": "SC", "zh-Hant": "TC", "zh-HK": "HK"}

Font: TypeAlias = ImageFont.FreeTypeFont | ImageFont.ImageFont


class FontSettingError(ValueError):
    """``PREVIEW_FONT_DIRS`` or ``PREVIEW_SYSTEM_FONTS`` has a bad value; the message names it."""


@functools.lru_cache(maxsize=1)
def has_raqm() -> bool:
    """Whether Pillow shapes with libraqm (bidi, Arabic joining, emoji ZWJ sequences)."""
    return bool(features.check_feature("raqm"))


@functools.lru_cache(maxsize=512)
def load(face: Face, size: int) -> Font:
    """``face`` at ``size`` pixels (a colour bitmap face: pass its native size); Pillow's font if it fails to load."""
    engine = ImageFont.Layout.RAQM if has_raqm() else ImageFont.Layout.BASIC
    if face.source != "pillow":
        try:
            return ImageFont.truetype(face.path, size, index=face.index, layout_engine=engine)
        except OSError as error:
            print(f"fonts: cannot load {face.path} (face {face.index}) at {size}px: {error}", file=sys.stderr)
    return ImageFont.load_default(size=size)


@dataclass(eq=False)  # compared and hashed by identity: it caches what it has read
class FontSet:
    """Every face a render may draw with, in search order; chooses a face per grapheme cluster."""

    faces: tuple[Face, ...]
    #: fontconfig's charsets, unparsed until needed.
    charsets: Mapping[Face, str] = field(default_factory=dict)
    _coverage: dict[Face, Coverage] = field(default_factory=dict, repr=False)
    _chains: dict[tuple[bool, str, str], tuple[Face, ...]] = field(default_factory=dict, repr=False)
    _chosen: dict[tuple[str, bool, str], Face | None] = field(default_factory=dict, repr=False)
    _identity: dict[str, object] | None = field(default=None, repr=False)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> FontSet:
        """The font set ``PREVIEW_FONT_DIRS`` and ``PREVIEW_SYSTEM_FONTS`` describe.

        Raises :class:`FontSettingError` naming the variable when a folder does not
        exist or the switch is neither 0 nor 1.
        """
        env = os.environ if environ is None else environ
        switch = env.get(SYSTEM_FONTS_ENV, "").strip().lower() or "1"
        if switch not in ("0", "1", "false", "true", "no", "yes"):
            raise FontSettingError(f"{SYSTEM_FONTS_ENV}: expected 0 or 1, got {switch!r}")
        folders = []
        for entry in env.get(FONT_DIRS_ENV, "").split(os.pathsep):
            if not entry.strip():
                continue
            folder = Path(entry.strip()).expanduser()
            if not folder.is_dir():
                raise FontSettingError(f"{FONT_DIRS_ENV}: {str(folder)!r} is not a folder")
            folders.append(folder)
        return cls.discover(folders, system=switch in ("1", "true", "yes"))

    @classmethod
    def discover(cls, folders: Sequence[Path], *, system: bool) -> FontSet:
        """Faces from ``folders`` (first), then the system's when ``system``.

        Pillow's own font ends the set when no other face draws text.
        """
        faces: list[Face] = []
        for folder in folders:
            faces.extend(scan_folder(folder, "dirs"))
        charsets: dict[Face, str] = {}
        if system:
            listed = fontconfig_faces()
            if listed is None:
                system_faces = [
                    face for folder in SYSTEM_FOLDERS for face in scan_folder(Path(folder).expanduser(), "folders")
                ]
            else:
                system_faces, charsets = list(listed), listed
            seen = {(file_id(face.path), face.index) for face in faces}
            for face in system_faces:
                key = (file_id(face.path), face.index)
                if key not in seen:
                    seen.add(key)
                    faces.append(face)
        if all(face.is_emoji for face in faces):
            faces.append(pillow_face())
        return cls(tuple(faces), charsets)

    # -- coverage ------------------------------------------------------------

    def covers(self, face: Face, code_point: int) -> bool:
        coverage = self._coverage.get(face)
        if coverage is None:
            coverage = self._coverage[face] = self._read_coverage(face)
        return code_point in coverage

    def _read_coverage(self, face: Face) -> Coverage:
        charset = self.charsets.get(face)
        if charset is not None:
            return Coverage.from_fontconfig(charset)
        return cmap_coverage(face)

    # -- choosing ------------------------------------------------------------

    def primary(self, bold: bool) -> Face:
        """The face Latin text is drawn with: the first of the text chain."""
        return self.chain(bold, "text", "")[0]

    def chain(self, bold: bool, kind: str, lang: str) -> tuple[Face, ...]:
        """The faces tried, in order, for a cluster of ``kind`` (``text``, ``cjk``, ``emoji``) in ``lang``."""
        key = (bold, kind, lang)
        chain = self._chains.get(key)
        if chain is None:
            if kind == "emoji":
                emoji = sorted((f for f in self.faces if f.is_emoji), key=lambda f: (f.source != "dirs", not f.color))
                chain = (*emoji, *(f for f in self.chain(bold, "text", lang) if f not in emoji))
            else:
                chain = tuple(sorted(self.faces, key=functools.partial(_rank, bold=bold, cjk=kind == "cjk",
                                                                        region=_REGION_BY_LANG.get(lang))))
            self._chains[key] = chain
        return chain

    def face_for(self, cluster: str, *, bold: bool, lang: str, previous: Face | None = None) -> Face | None:
        """The face that draws ``cluster`` (one grapheme cluster), or ``None`` when no face covers it.

        ``lang`` is the paragraph's language hint (``ja``, ``ko``, ``zh-Hans``…, or
        ``""``); kana prefer the JP face and hangul the KR face whatever it says.
        ``previous`` is the face of the cluster before: spaces, punctuation and
        digits stay in it when it covers them, so runs do not break on them.
        """
        needed = [ord(char) for char in cluster if not is_ignorable(char)]
        if not needed:
            return previous or self.primary(bold)
        kind = cluster_kind(cluster)
        if previous is not None and not previous.is_emoji and kind != "emoji" and is_neutral(cluster):
            if all(self.covers(previous, code_point) for code_point in needed):
                return previous
        lang = (script_language(needed[0]) or lang) if kind == "cjk" else ""
        key = (cluster, bold, lang)
        if key in self._chosen:
            return self._chosen[key]
        chain = self.chain(bold, kind, lang)
        chosen = next((face for face in chain if all(self.covers(face, cp) for cp in needed)), None)
        if chosen is None:  # no face has all of it: the one with its base character
            chosen = next((face for face in chain if self.covers(face, needed[0])), None)
        self._chosen[key] = chosen
        return chosen

    # -- identity ------------------------------------------------------------

    def identity(self) -> dict[str, object]:
        """What decides how text looks, for cache keys: the faces in order and their files' sizes and mtimes."""
        if self._identity is None:
            listing: list[object] = []
            for face in self.faces:
                if face.source == "pillow":
                    listing.append([face.path, face.family])
                    continue
                try:
                    stat = os.stat(face.path)
                    listing.append([face.path, face.index, stat.st_size, stat.st_mtime_ns])
                except OSError:
                    listing.append([face.path, face.index, None, None])
            digest = hashlib.sha256(json.dumps(listing, separators=(",", ":")).encode("utf-8")).hexdigest()
            self._identity = {
                "layout": TEXT_LAYOUT_VERSION,
                "pillow": PIL.__version__,
                "raqm": has_raqm(),
                "faces": len(self.faces),
                "files": digest,
            }
        return self._identity

    def face_of(self, font: Font) -> Face | None:
        """The face ``font`` was loaded from, if it is one of this set's."""
        path = getattr(font, "path", None)
        if not isinstance(path, str):
            return next((face for face in self.faces if face.source == "pillow"), None)
        index = getattr(font, "index", 0)
        return next((face for face in self.faces if face.path == path and face.index == index), None)


@functools.lru_cache(maxsize=1)
def default_font_set() -> FontSet:
    """The font set of this process's environment, built once."""
    return FontSet.from_environ()


def _rank(face: Face, *, bold: bool, cjk: bool, region: str | None) -> tuple[object, ...]:
    family = face.family.lower()
    if face.source == "pillow":
        group = 3
    elif face.is_emoji:
        group = 2
    elif face.source == "dirs":
        group = 0
    else:
        group = 1
    weight_gap = abs(face.weight - (BOLDFACE_WEIGHT if bold else REGULAR_WEIGHT))
    plain = weight_gap < 100 and not face.slanted and not face.narrow_or_wide
    primary = len(PRIMARY_FAMILIES)
    if plain and face.family in PRIMARY_FAMILIES:
        primary = PRIMARY_FAMILIES.index(face.family)
    if "mono" in family:
        kind = 3
    elif "sans" in family:
        kind = 1 if ("display" in family or " ui" in family) else 0
    else:
        kind = 2
    face_region = face.region
    region_rank = 1 if face_region is None else (0 if face_region == region else 2)
    return (
        group,
        cjk and face_region is None,  # CJK characters: CJK faces first
        primary,
        kind,
        face.slanted,
        face.narrow_or_wide,
        weight_gap,
        region_rank,
        face.family,
        face.path,
        face.index,
    )
