"""Limits on a job request: how big a chapter, its texts, assets and output may be.

The defaults are the documented ones. The settings build a :class:`Limits` from
the environment at start-up; the model only reads it.
"""

from __future__ import annotations

import attrs
from attrs import validators as v

_count = [v.instance_of(int), v.ge(1)]


@attrs.frozen
class Limits:
    """What :func:`preview_actors.request.parse_job_request` accepts."""

    #: Steps per chapter.
    max_steps: int = attrs.field(default=100, validator=_count)
    #: Shortest step, in milliseconds.
    min_step_duration_ms: int = attrs.field(default=100, validator=_count)
    #: Longest step, in milliseconds.
    max_step_duration_ms: int = attrs.field(default=60_000, validator=_count)
    #: Longest chapter (sum of its steps), in milliseconds.
    max_total_duration_ms: int = attrs.field(default=600_000, validator=_count)
    #: Longest step title, in characters (Unicode code points).
    max_title_chars: int = attrs.field(default=200, validator=_count)
    #: Longest step text, in characters (Unicode code points).
    max_text_chars: int = attrs.field(default=2_000, validator=_count)
    #: Assets per chapter.
    max_assets: int = attrs.field(default=50, validator=_count)
    #: Longest id (projectId, chapterId, step and asset ids), in characters.
    max_id_chars: int = attrs.field(default=128, validator=_count)
    #: Largest ``data:`` URI asset, in bytes once decoded.
    max_data_uri_bytes: int = attrs.field(default=262_144, validator=_count)
    #: Widest output, in pixels.
    max_width: int = attrs.field(default=1920, validator=_count)
    #: Tallest output, in pixels.
    max_height: int = attrs.field(default=1080, validator=_count)
    #: Highest output frame rate, in frames per second.
    max_fps: int = attrs.field(default=60, validator=_count)
    #: Lowest output frame rate, in frames per second.
    min_fps: int = attrs.field(default=1, validator=_count)
    #: Smallest output width or height, in pixels.
    min_side: int = attrs.field(default=16, validator=_count)

    def __attrs_post_init__(self) -> None:
        for low, high in (
            ("min_step_duration_ms", "max_step_duration_ms"),
            ("min_fps", "max_fps"),
            ("min_side", "max_width"),
            ("min_side", "max_height"),
        ):
            if getattr(self, low) > getattr(self, high):
                raise ValueError(f"{low} must not be more than {high}")
