"""Worker writes wait for a job store that is briefly away, within a bound."""

from __future__ import annotations

import logging
import time

import pytest

from preview_actors import BrokerUnavailableError
from preview_actors.store.patience import patiently


class Flaky:
    """A store call that fails ``failures`` times, then answers."""

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or BrokerUnavailableError("job store (redis) unreachable: connection refused")
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "written"


def test_a_write_waits_for_the_store_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="preview_actors.store.patience")
    call = Flaky(failures=2)

    assert patiently("recording progress", call) == "written"

    assert call.calls == 3
    messages = [(record.levelname, record.getMessage()) for record in caplog.records]
    assert [level for level, _ in messages] == ["WARNING", "INFO"]
    assert "recording progress" in messages[0][1] and "connection refused" in messages[0][1]
    assert not any(record.exc_info for record in caplog.records)  # no traceback


def test_a_store_away_for_longer_than_the_patience_fails_the_write() -> None:
    call = Flaky(failures=1_000)
    started = time.monotonic()
    with pytest.raises(BrokerUnavailableError, match="unreachable"):
        patiently("recording progress", call, patience_s=0.5)
    assert 0.5 <= time.monotonic() - started < 5
    assert call.calls >= 2


def test_other_errors_are_not_retried() -> None:
    call = Flaky(failures=1, error=ValueError("bad field"))
    with pytest.raises(ValueError, match="bad field"):
        patiently("recording progress", call)
    assert call.calls == 1
