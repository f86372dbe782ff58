"""Worker start-up names every broker setting that would cut a render short or redeliver a live one."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from conftest import running_worker

from preview_actors import actors
from preview_actors.middleware.startup_checks import render_time_warnings
from preview_actors.runtime import Runtime


def test_defaults_warn_of_nothing(runtime: Runtime) -> None:
    assert render_time_warnings(runtime.broker, runtime.settings) == []


def test_a_time_limit_shorter_than_the_render_timeout_is_named(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Given dramatiq's time limit of the render actor set below PREVIEW_RENDER_TIMEOUT_S (30 s here)
    monkeypatch.setitem(actors.render.options, "time_limit", 20_000)

    # When a worker starts
    caplog.set_level(logging.WARNING)
    with running_worker(runtime, threads=1):
        pass

    # Then it warns, naming both settings
    [warning] = [r.getMessage() for r in caplog.records if "time_limit" in r.getMessage()]
    assert "PREVIEW_RENDER_TIMEOUT_S" in warning and "20000 ms" in warning


def test_without_a_time_limit_dramatiq_s_default_is_checked(
    runtime_factory: Callable[..., Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = runtime_factory("stub", render_timeout_s=900.0)
    monkeypatch.delitem(actors.render.options, "time_limit")
    [warning] = render_time_warnings(runtime.broker, runtime.settings)
    assert "time_limit" in warning and "600000 ms" in warning


def test_a_redis_heartbeat_timeout_a_busy_worker_cannot_meet_is_named(
    runtime_factory: Callable[..., Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = runtime_factory("redis")
    monkeypatch.setattr(runtime.broker, "heartbeat_timeout", 4_000)
    [warning] = render_time_warnings(runtime.broker, runtime.settings)
    assert "heartbeat_timeout" in warning and "4000 ms" in warning


def test_a_sqlite_lease_its_consumer_cannot_renew_in_time_is_named(
    runtime_factory: Callable[..., Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = runtime_factory("sqlite")
    monkeypatch.setattr(runtime.broker, "lease_ms", runtime.broker.poll_interval_ms)
    [warning] = render_time_warnings(runtime.broker, runtime.settings)
    assert "lease_ms" in warning


def test_a_render_timeout_beyond_rabbitmq_s_default_consumer_timeout_is_named(
    runtime_factory: Callable[..., Runtime],
) -> None:
    runtime = runtime_factory("rabbitmq", render_timeout_s=3_600.0)
    [warning] = render_time_warnings(runtime.broker, runtime.settings)
    assert "consumer_timeout" in warning and "PREVIEW_RENDER_TIMEOUT_S" in warning
