"""The worker's ``/metrics`` endpoint, served by prometheus-client's own server (``start_http_server``)."""

from __future__ import annotations

import logging
import socket
import urllib.request
from collections.abc import Iterator

import pytest

from preview_actors.brokers.stub import StubBroker
from preview_actors.middleware.metrics import Metrics


def free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}/metrics" if ":" in host else f"http://{host}:{port}/metrics"


@pytest.fixture
def broker() -> Iterator[StubBroker]:
    broker = StubBroker()
    yield broker
    broker.close()


def booted(broker: StubBroker, host: str, port: int) -> Metrics:
    """A Metrics middleware as a ``dramatiq preview_actors`` process runs it, up to its worker's boot."""
    middleware = Metrics(lambda actor_name: None, host=host, port=port)
    middleware.after_process_boot(broker)
    middleware.after_worker_boot(broker, None)  # type: ignore[arg-type]  # the worker is not used
    return middleware


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_metrics_are_served_on_the_host_asked_for_until_the_worker_stops(broker: StubBroker, host: str) -> None:
    # Given a worker process booted with metrics on a free port (IPv4 or IPv6)
    port = free_port(host)
    middleware = booted(broker, host, port)

    # When /metrics is scraped
    with urllib.request.urlopen(url(host, port), timeout=10) as answer:
        body = answer.read().decode()

    # Then it answers the exposition format with the package's metrics, and nothing listens once stopped
    assert answer.status == 200 and answer.headers["Content-Type"].startswith("text/plain")
    assert "# TYPE preview_stage_duration_seconds histogram" in body
    middleware.after_worker_shutdown(broker, None)  # type: ignore[arg-type]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, port), timeout=10).close()


def test_a_taken_port_is_left_to_the_process_that_has_it(broker: StubBroker, caplog: pytest.LogCaptureFixture) -> None:
    port = free_port("127.0.0.1")
    first = booted(broker, "127.0.0.1", port)
    caplog.set_level(logging.INFO)

    second = booted(broker, "127.0.0.1", port)

    assert [r for r in caplog.records if "Metrics not served from this process" in r.getMessage()]
    second.after_worker_shutdown(broker, None)  # type: ignore[arg-type]  # stops nothing of the first
    with urllib.request.urlopen(url("127.0.0.1", port), timeout=10) as answer:
        assert answer.status == 200
    first.after_worker_shutdown(broker, None)  # type: ignore[arg-type]
