"""Scripts: what kind of character a grapheme cluster is, and where a line may break.

- :func:`cluster_kind`: ``emoji`` (drawn in colour by an emoji face), ``cjk``
  (CJK faces first; lines break between characters) or ``text``;
- :func:`language_hint` and :func:`script_language`: which CJK face suits a
  paragraph (kana: Japanese, hangul: Korean, else Simplified Chinese);
- :func:`may_break_between`: line breaks between clusters with no space
  between them, CJK and emoji only, with the kinsoku rules (no line starts with
  closing punctuation or a small kana, none ends with an opening bracket);
- :func:`clusters`: extended grapheme clusters, with the ``regex`` package.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable
from typing import Any

#: No line may start with these (kinsoku shori): closing brackets and quotes, stops and commas,
#: small kana, the prolonged sound mark, iteration marks, and their ASCII cousins.
NO_LINE_START = frozenset(
    "、。，．・：；？！゛゜ヽヾゝゞ々〻ー―‐〜～…‥」』）］｝〕〉》】〙〗〟’”｠»"
    "ぁぃぅぇぉっゃゅょゎゕゖァィゥェォッャュョヮヵヶㇰㇱㇲㇳㇴㇵㇶㇷㇸㇹㇺㇻㇼㇽㇾㇿ"
    "｡｣､･ｧｨｩｪｫｬｭｮｯｰ"
    ",.:;!?)]}%"
)
#: No line may end with these: opening brackets and quotes.
NO_LINE_END = frozenset("「『（［｛〔〈《【〘〖〝‘“｟«｢([{")

#: Emoji drawn as emoji without U+FE0F: Emoji_Presentation=Yes outside the big pictograph blocks.
_EMOJI_PRESENTATION = frozenset(
    code_point
    for start, end in (
        (0x231A, 0x231B), (0x23E9, 0x23EC), (0x23F0, 0x23F0), (0x23F3, 0x23F3), (0x25FD, 0x25FE),
        (0x2614, 0x2615), (0x2648, 0x2653), (0x267F, 0x267F), (0x2693, 0x2693), (0x26A1, 0x26A1),
        (0x26AA, 0x26AB), (0x26BD, 0x26BE), (0x26C4, 0x26C5), (0x26CE, 0x26CE), (0x26D4, 0x26D4),
        (0x26EA, 0x26EA), (0x26F2, 0x26F3), (0x26F5, 0x26F5), (0x26FA, 0x26FA), (0x26FD, 0x26FD),
        (0x2705, 0x2705), (0x270A, 0x270B), (0x2728, 0x2728), (0x274C, 0x274C), (0x274E, 0x274E),
        (0x2753, 0x2755), (0x2757, 0x2757), (0x2795, 0x2797), (0x27B0, 0x27B0), (0x27BF, 0x27BF),
        (0x2B1B, 0x2B1C), (0x2B50, 0x2B50), (0x2B55, 0x2B55), (0x1F004, 0x1F004), (0x1F0CF, 0x1F0CF),
        (0x1F18E, 0x1F18E), (0x1F191, 0x1F19A), (0x1F201, 0x1F201), (0x1F21A, 0x1F21A),
        (0x1F22F, 0x1F22F), (0x1F232, 0x1F236), (0x1F238, 0x1F23A), (0x1F250, 0x1F251),
    )
    for code_point in range(start, end + 1)
)  # fmt: skip
#: Pictographs (Misc Symbols and Pictographs … Symbols and Pictographs Extended-A).
_PICTOGRAPHS = ((0x1F300, 0x1F64F), (0x1F680, 0x1F6FF), (0x1F7E0, 0x1F7FF), (0x1F900, 0x1F9FF), (0x1FA70, 0x1FAFF))
#: Hangul, kana, CJK ideographs, symbols and punctuation, full-width forms.
_CJK = (
    (0x1100, 0x11FF), (0x2E80, 0x2FDF), (0x2FF0, 0x303F), (0x3040, 0x30FF), (0x3100, 0x31FF),
    (0x3200, 0x33FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xA960, 0xA97F), (0xAC00, 0xD7FF),
    (0xF900, 0xFAFF), (0xFE30, 0xFE4F), (0xFF00, 0xFFEF), (0x1B000, 0x1B16F), (0x20000, 0x3FFFF),
)  # fmt: skip
_KANA = ((0x3040, 0x30FF), (0x31F0, 0x31FF), (0xFF66, 0xFF9F), (0x1B000, 0x1B16F))
_HANGUL = ((0x1100, 0x11FF), (0x3130, 0x318F), (0xA960, 0xA97F), (0xAC00, 0xD7FF), (0xFFA0, 0xFFDC))


def _within(code_point: int, ranges: Iterable[tuple[int, int]]) -> bool:
    return any(start <= code_point <= end for start, end in ranges)


def is_ignorable(char: str) -> bool:
    """Joiners, variation selectors, tags, bidi marks: shaped with their neighbours, never drawn alone."""
    code_point = ord(char)
    return (
        unicodedata.category(char) == "Cf"
        or 0xFE00 <= code_point <= 0xFE0F
        or 0xE0100 <= code_point <= 0xE01EF
        or code_point == 0x034F
    )


def cluster_kind(cluster: str) -> str:
    """``emoji`` (drawn in colour), ``cjk`` (CJK faces first, breaks between characters) or ``text``."""
    first = ord(cluster[0])
    if first < 0x1100 and len(cluster) == 1:  # Latin, Greek, Cyrillic, Arabic, Hebrew, Indic…: the common case
        return "text"
    if "\ufe0e" in cluster:
        return "text"
    for char in cluster:
        code_point = ord(char)
        if (
            code_point in (0xFE0F, 0x20E3)
            or 0x1F3FB <= code_point <= 0x1F3FF  # skin tones
            or 0x1F1E6 <= code_point <= 0x1F1FF  # regional indicators (flags)
            or 0xE0020 <= code_point <= 0xE007F  # tags (subdivision flags)
        ):
            return "emoji"
    if first in _EMOJI_PRESENTATION or _within(first, _PICTOGRAPHS):
        return "emoji"
    if _within(first, _CJK):
        return "cjk"
    return "text"


def script_language(code_point: int) -> str | None:
    """``ja`` for kana, ``ko`` for hangul: scripts that name their language."""
    if _within(code_point, _KANA):
        return "ja"
    if _within(code_point, _HANGUL):
        return "ko"
    return None


def is_neutral(cluster: str) -> bool:
    """Spaces, punctuation, symbols and digits: no script of their own."""
    return unicodedata.category(cluster[0])[0] in "ZPSN"


def language_hint(text: str) -> str:
    """The CJK language a paragraph is most likely in: ``ja`` with kana, ``ko`` with hangul, else ``zh-Hans``.

    It picks the face for Han characters, which every CJK face covers with its
    own regional glyph shapes.
    """
    has_hangul = False
    for char in text:
        language = script_language(ord(char)) if ord(char) >= 0x1100 else None
        if language == "ja":
            return "ja"
        has_hangul = has_hangul or language == "ko"
    return "ko" if has_hangul else "zh-Hans"


def may_break_between(before: str, after: str) -> bool:
    """Whether a line may break between two clusters with no space between them."""
    if after[0] in NO_LINE_START or before[-1] in NO_LINE_END:
        return False
    return cluster_kind(before) in ("cjk", "emoji") or cluster_kind(after) in ("cjk", "emoji")


@functools.lru_cache(maxsize=1)
def _cluster_pattern() -> Any:
    import regex  # imported on first use: plain ASCII text never needs it

    return regex.compile(r"\X")


def clusters(text: str) -> list[str]:
    """``text`` cut into extended grapheme clusters (UAX #29).

    An emoji ZWJ sequence, a flag, a letter with its marks each stay one piece.
    """
    return list(_cluster_pattern().findall(text))
