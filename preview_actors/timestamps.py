"""Timestamps as the package writes them: ISO 8601, UTC, ``Z``-suffixed.

One format everywhere — job records, statuses, dead letters, log lines and
render-log headers — ``2023-11-14T22:13:20Z``, or with milliseconds
``2023-11-14T22:13:20.042Z``. Fractions are truncated, never rounded up, so a
time never reads later than it was.
"""

from __future__ import annotations

import math
import time

__all__ = ["iso_utc"]


def iso_utc(seconds: float | None = None, *, milliseconds: bool = False) -> str:
    """``seconds`` since the epoch (default: now) as ISO 8601 UTC, to the second or to the millisecond.

    Raises:
      ValueError: ``seconds`` is negative or not a finite number.
    """
    if seconds is None:
        seconds = time.time()
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"a timestamp is seconds since the epoch (>= 0), not {seconds!r}")
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if not milliseconds:
        return whole + "Z"
    return f"{whole}.{int(seconds % 1 * 1000):03d}Z"
