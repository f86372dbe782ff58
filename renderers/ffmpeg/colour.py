"""Colour: what a clip declares, and the filters that show it as BT.709 SDR.

Every segment is BT.709 SDR: BT.709 primaries, transfer and matrix, limited
range, and tagged so. A clip declares its own colour in its header (ffmpeg
prints it after the pixel format: ``yuv420p10le(tv, bt2020nc/bt2020/smpte2084)``,
names as in ``av_color_*_name``, which zscale accepts too). What is done:

* Matrix and range only (BT.601 or BT.2020 matrix, full range): swscale
  converts them as it scales the clip (no extra filter; the plain path).
* Other primaries or transfer (BT.601 SD, BT.2020): zscale converts them
  through linear light, after the clip is scaled down to the size it is shown.
* HDR (PQ, HLG): linear light with reference white (BT.2408: 203 cd/m²) at
  1.0, so SDR white graded into HDR comes back as SDR white; BT.2020 to BT.709
  primaries; the Möbius tone curve on the brightest channel (hue kept), the
  identity up to :data:`TONE_KNEE` of reference white, highlights rolled off
  up to the clip's peak (its MaxCLL or mastering peak when the header gives
  one, else :data:`ASSUMED_PEAK_NITS`); then the BT.709 transfer and matrix.

An unspecified transfer counts as BT.709's curve (BT.601 and BT.2020 SDR share
it); unspecified primaries as BT.2020 beside an HDR transfer, else BT.709. A
clip that declares nothing at all keeps the plain path, as before (swscale's
default matrix; no guess from the frame size).
"""

from __future__ import annotations

from dataclasses import dataclass

#: HDR reference white (ITU-R BT.2408), in cd/m²: shown as SDR white.
REFERENCE_WHITE_NITS = 203.0
#: Peak assumed for HDR without light-level metadata (HLG's nominal display peak), in cd/m².
ASSUMED_PEAK_NITS = 1000.0
#: Möbius curve knee, as a share of reference white in linear light: below it, nothing changes.
TONE_KNEE = 0.6

#: What every segment is, as ffmpeg names it.
TARGET = "bt709"

#: Transfers with BT.709's curve (their names differ, their OETF does not).
BT709_LIKE_TRANSFERS = frozenset({"bt709", "smpte170m", "bt2020-10", "bt2020-12"})
HDR_TRANSFERS = frozenset({"smpte2084", "arib-std-b67"})
#: What zscale (zimg) can convert from.
ZSCALE_PRIMARIES = frozenset({
    "bt709", "bt470m", "bt470bg", "smpte170m", "smpte240m", "film", "bt2020", "smpte428", "smpte431",
    "smpte432", "jedec-p22", "ebu3213",
})
ZSCALE_TRANSFERS = frozenset({
    "bt709", "bt470m", "bt470bg", "smpte170m", "smpte240m", "linear", "log100", "log316", "bt2020-10",
    "bt2020-12", "smpte2084", "iec61966-2-4", "iec61966-2-1", "arib-std-b67",
})
ZSCALE_MATRICES = frozenset({
    "gbr", "bt709", "fcc", "bt470bg", "smpte170m", "smpte240m", "ycgco", "bt2020nc", "bt2020c",
    "chroma-derived-nc", "chroma-derived-c", "ictcp",
})
#: The matrix a YUV clip most likely uses when it names only its primaries.
_MATRIX_OF_PRIMARIES = {"bt2020": "bt2020nc", "smpte170m": "smpte170m", "bt470bg": "bt470bg", "smpte240m": "smpte240m"}
#: One-word items that share the parentheses with the colour names (field order, chroma location).
_NOT_COLOUR = frozenset({"progressive", "left", "center", "topleft", "top", "bottomleft", "bottom", "unknown"})


@dataclass(frozen=True)
class ClipColour:
    """A clip's declared colour; ``None`` where the header leaves it unspecified."""

    #: "tv" (limited) or "pc" (full).
    range: str | None = None
    matrix: str | None = None
    primaries: str | None = None
    transfer: str | None = None
    #: Brightest light the clip holds (MaxCLL, else its mastering display's peak), in cd/m².
    peak_nits: float | None = None

    @property
    def is_hdr(self) -> bool:
        return self.transfer in HDR_TRANSFERS


def parse_declared(details: str) -> ClipColour:
    """The colour in the parentheses after a pixel format: ``tv, bt2020nc/bt2020/smpte2084, progressive``.

    One name stands for all three (``bt709``); ``unknown`` is unspecified.
    """
    colour_range = matrix = primaries = transfer = None
    for item in (part.strip() for part in details.split(",")):
        if item in ("tv", "pc"):
            colour_range = item
        elif "/" in item:
            matrix, primaries, transfer = (None if name == "unknown" else name for name in item.split("/", 2))
        elif item and " " not in item and item not in _NOT_COLOUR:
            matrix = primaries = transfer = item
    return ClipColour(colour_range, matrix, primaries, transfer)


def needs_conversion(colour: ClipColour) -> bool:
    """True when primaries or transfer differ from BT.709 (and zscale can convert them).

    Matrix and range alone do not count: swscale converts those while scaling.
    """
    assumed = _assumed(colour)
    if assumed is None:
        return False  # declares nothing: the plain path
    primaries, transfer = assumed
    if primaries not in ZSCALE_PRIMARIES or transfer not in ZSCALE_TRANSFERS:
        return False  # nothing zscale can convert from: shown as BT.709, as before
    return primaries != TARGET or transfer not in BT709_LIKE_TRANSFERS


def peak_nits(colour: ClipColour) -> float:
    """The peak the tone curve maps to SDR white's roll-off end, in cd/m².

    HLG's signal peak is 1000 cd/m² by definition of its display (zimg's OOTF);
    PQ's comes from the clip's metadata when it has some.
    """
    if colour.transfer == "smpte2084" and colour.peak_nits is not None and colour.peak_nits > REFERENCE_WHITE_NITS:
        return colour.peak_nits
    return ASSUMED_PEAK_NITS


def to_bt709(colour: ClipColour, *, rgb: bool, alpha: bool) -> list[str]:
    """Filters from the clip's colour to BT.709 SDR, limited range; the caller picks the YUV format.

    Empty when :func:`needs_conversion` is false. ``rgb``: the decoded frames
    are RGB (no matrix; full range unless declared otherwise). ``alpha``: keep
    the alpha plane through the float stage of tone mapping.
    """
    assumed = _assumed(colour)
    if assumed is None or not needs_conversion(colour):
        return []
    primaries, transfer = assumed
    if rgb:
        matrix, colour_range = "gbr", colour.range or "pc"
    else:
        matrix = colour.matrix if colour.matrix in ZSCALE_MATRICES else _MATRIX_OF_PRIMARIES.get(primaries, TARGET)
        colour_range = colour.range or "tv"
    source = f"pin={primaries}:tin={transfer}:min={matrix}:rin={colour_range}"
    if not colour.is_hdr:
        return [f"zscale={source}:p={TARGET}:t={TARGET}:m={TARGET}:r=tv"]
    peak = peak_nits(colour) / REFERENCE_WHITE_NITS
    return [
        f"zscale={source}:t=linear:p={TARGET}:npl={REFERENCE_WHITE_NITS:g}",
        f"format={'gbrapf32le' if alpha else 'gbrpf32le'}",
        f"tonemap=tonemap=mobius:param={TONE_KNEE:g}:desat=0:peak={peak:.4f}",
        f"zscale=pin={TARGET}:tin=linear:t={TARGET}:m={TARGET}:r=tv",
    ]


def _assumed(colour: ClipColour) -> tuple[str, str] | None:
    """Primaries and transfer, the unspecified one filled in from the other; None if both are."""
    if colour.primaries is None and colour.transfer is None:
        return None
    transfer = colour.transfer or TARGET
    primaries = colour.primaries or ("bt2020" if transfer in HDR_TRANSFERS else TARGET)
    return primaries, transfer
