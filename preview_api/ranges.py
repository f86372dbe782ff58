"""``Range: bytes=…`` (RFC 9110 §14): one range is served; anything else gets the whole file.

Forms: ``bytes=a-b`` (inclusive, ``b`` clamped to the last byte),
``bytes=a-`` (from ``a`` to the end), ``bytes=-n`` (the last ``n`` bytes).
A malformed header, another unit, or several ranges are ignored, as the RFC
allows: the answer is then the whole file (200). A well-formed range no byte
of which exists is unsatisfiable (416).
"""

from __future__ import annotations

import re

import attrs

from .errors import ApiError

#: Most digits accepted in a range bound (more than any file size).
_MAX_DIGITS = 19
_SPEC = re.compile(rf"\s*([0-9]{{0,{_MAX_DIGITS}}})\s*-\s*([0-9]{{0,{_MAX_DIGITS}}})\s*")


@attrs.frozen
class ByteRange:
    #: First byte, inclusive.
    start: int
    #: Last byte, inclusive.
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one range asked for, or None to send the whole file; 416 (:class:`ApiError`) when unsatisfiable."""
    if header is None:
        return None
    unit, equals, spec = header.partition("=")
    if not equals or unit.strip().lower() != "bytes" or "," in spec:
        return None
    match = _SPEC.fullmatch(spec)
    if match is None:
        return None
    first, last = match.groups()
    if not first:
        if not last:
            return None  # "bytes=-"
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise unsatisfiable(size)
        return ByteRange(max(0, size - suffix), size - 1)
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None  # malformed: ignored
    if start >= size:
        raise unsatisfiable(size)
    return ByteRange(start, min(end, size - 1))


def unsatisfiable(size: int) -> ApiError:
    return ApiError(
        416,
        "range_not_satisfiable",
        f"the range asked for lies outside the artifact ({size} bytes)",
        headers={"Content-Range": f"bytes */{size}"},
    )
