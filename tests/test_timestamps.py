"""One timestamp format for the whole package: ISO 8601 in UTC with a ``Z``."""

from __future__ import annotations

import logging
import time

import pytest

from preview_actors.logs import JsonFormatter
from preview_actors.timestamps import iso_utc


@pytest.mark.parametrize(
    ("seconds", "milliseconds", "expected"),
    [
        (0.0, False, "1970-01-01T00:00:00Z"),
        (0.0, True, "1970-01-01T00:00:00.000Z"),
        (1_700_000_000.9999, False, "2023-11-14T22:13:20Z"),  # truncated, never rounded up
        (1_700_000_000.9999, True, "2023-11-14T22:13:20.999Z"),
        (1_700_000_000.042, True, "2023-11-14T22:13:20.042Z"),
    ],
)
def test_iso_utc(seconds: float, milliseconds: bool, expected: str) -> None:
    assert iso_utc(seconds, milliseconds=milliseconds) == expected


def test_bad_timestamps_are_refused_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="seconds since the epoch"):
        iso_utc(-1.0)
    with pytest.raises(ValueError, match="seconds since the epoch"):
        iso_utc(float("nan"))


def test_log_lines_use_the_helper_format() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    record.created, record.msecs = 1_700_000_000.042, 42.0
    assert '"time": "2023-11-14T22:13:20.042Z"' in JsonFormatter().format(record)


def test_now_by_default() -> None:
    before = time.time()
    stamp = iso_utc()
    parsed = time.mktime(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))
    assert stamp.endswith("Z") and abs(parsed - time.mktime(time.gmtime(before))) <= 2
