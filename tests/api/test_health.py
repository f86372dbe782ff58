"""/healthz and /readyz on every broker, and the readiness checks of preview_actors.health."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from api_support import Api, checker, make_api  # noqa: F401 - fixtures
from conftest import BROKERS

from preview_actors.brokers import create_broker
from preview_actors.errors import BrokerUnavailableError
from preview_actors.health import check_broker, check_store
from preview_actors.store import open_store

MakeApi = Callable[..., Api]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("kind", BROKERS)
def test_ready_on_every_broker(make_api: MakeApi, kind: str) -> None:
    api = make_api(kind)

    live = api.client.get(api.url("/healthz"))
    ready = api.client.get(api.url("/readyz"))

    assert live.status_code == 200 and live.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"broker": {"status": "ok"}, "store": {"status": "ok"}}}


def test_not_ready_names_the_component(make_api: MakeApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a SQLite broker whose file is not a database, and a store that works
    api = make_api("sqlite")
    bad = tmp_path / "not-a-db"
    bad.write_bytes(b"garbage" * 1000)
    monkeypatch.setattr(api.runtime, "broker", create_broker(f"sqlite:///{bad}", []))

    answer = api.client.get(api.url("/readyz"))

    assert answer.status_code == 503
    body = answer.json()
    assert body["checks"]["store"] == {"status": "ok"}
    assert body["checks"]["broker"]["status"] == "unavailable"
    assert body["error"] == {"code": "unavailable", "message": "broker: file is not a database"}
    assert api.client.get(api.url("/healthz")).status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        lambda port: f"redis://127.0.0.1:{port}/0",
        lambda port: f"amqp://guest:guest@127.0.0.1:{port}/%2F",
    ],
)
def test_check_broker_names_the_broker_and_returns_promptly(url: Callable[[int], str]) -> None:
    broker = create_broker(url(_closed_port()), [])
    started = time.monotonic()
    with pytest.raises(BrokerUnavailableError, match=r"^broker: "):
        check_broker(broker, timeout_s=2.0)
    assert time.monotonic() - started < 3.0


def test_check_store_names_the_store() -> None:
    store = open_store(f"redis://127.0.0.1:{_closed_port()}/0")
    with pytest.raises(BrokerUnavailableError, match=r"^store: "):
        check_store(store)
    store.close()


def test_a_check_that_hangs_is_given_up_at_its_timeout() -> None:
    class HangingStore:
        def ping(self) -> None:
            time.sleep(5)

    started = time.monotonic()
    with pytest.raises(BrokerUnavailableError, match=r"^store: no answer within 0.2 s$"):
        check_store(HangingStore(), timeout_s=0.2)  # type: ignore[arg-type]
    assert time.monotonic() - started < 1.0


def test_stub_broker_is_always_ready() -> None:
    check_broker(create_broker("stub://", []))
