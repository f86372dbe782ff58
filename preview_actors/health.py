"""Readiness checks: does the broker answer, does the job-status store answer?

Each check returns ``None`` when its component answers and otherwise raises
:class:`~preview_actors.errors.BrokerUnavailableError` whose message starts
with the component (``"broker: …"``, ``"store: …"``), within about
:data:`CHECK_TIMEOUT_S`. Drivers are looked up in ``sys.modules`` rather than
imported: a broker whose driver module was never imported cannot be of its
type, so checking a SQLite deployment never imports redis or pika.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import dramatiq

from .errors import BrokerUnavailableError
from .store import JobStore

__all__ = ["CHECK_TIMEOUT_S", "check_broker", "check_store"]

#: Longest a check waits for its component to answer, seconds.
CHECK_TIMEOUT_S = 2.0


def check_store(store: JobStore, *, timeout_s: float = CHECK_TIMEOUT_S) -> None:
    """``store.ping()``, given up after ``timeout_s``."""
    _bounded("store", store.ping, timeout_s)


def check_broker(broker: dramatiq.Broker, *, timeout_s: float = CHECK_TIMEOUT_S) -> None:
    """Ask ``broker``'s server (Redis, RabbitMQ) or file (SQLite) for a trivial answer.

    A stub broker, or a broker of a type not known here, is taken as ready.
    """
    redis_module = sys.modules.get("dramatiq.brokers.redis")
    if redis_module is not None and isinstance(broker, redis_module.RedisBroker):
        _bounded("broker", lambda: _ping_redis(broker, timeout_s), timeout_s)
        return
    rabbitmq_module = sys.modules.get("dramatiq.brokers.rabbitmq")
    if rabbitmq_module is not None and isinstance(broker, rabbitmq_module.RabbitmqBroker):
        _bounded("broker", lambda: _open_rabbitmq(broker, timeout_s), timeout_s)
        return
    sqlite_module = sys.modules.get("preview_actors.brokers.sqlite")
    if sqlite_module is not None and isinstance(broker, sqlite_module.SQLiteBroker):
        _bounded("broker", lambda: _query_sqlite(broker, timeout_s), timeout_s)


def _ping_redis(broker: dramatiq.Broker, timeout_s: float) -> None:
    """PING on a connection of its own, with socket timeouts and no retries.

    The broker's pool has no socket timeout (a silent server would hang a
    ``client.ping()`` forever) and retries with back-off, so it is not used
    for the check; the connection is built from the pool's own class and
    parameters (host, TLS, password…).
    """
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    pool = broker.client.connection_pool  # type: ignore[attr-defined]  # a Redis broker (the caller checked)
    parameters = {
        **pool.connection_kwargs,
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
        "retry": Retry(NoBackoff(), 0),
    }
    connection = pool.connection_class(**parameters)
    try:
        connection.connect()
        connection.send_command("PING")
        connection.read_response()
    finally:
        connection.disconnect()


def _open_rabbitmq(broker: dramatiq.Broker, timeout_s: float) -> None:
    """Open and close a connection with the broker's parameters and short timeouts."""
    import copy

    import pika

    configured = broker.parameters  # type: ignore[attr-defined]  # a RabbitMQ broker (the caller checked)
    candidates = configured if isinstance(configured, list) else [configured]
    parameters = []
    for candidate in candidates:
        bounded = copy.copy(candidate)
        bounded.socket_timeout = timeout_s
        bounded.stack_timeout = timeout_s
        bounded.blocked_connection_timeout = timeout_s
        bounded.connection_attempts = 1
        bounded.retry_delay = 0
        parameters.append(bounded)
    connection = pika.BlockingConnection(parameters)
    connection.close()


def _query_sqlite(broker: dramatiq.Broker, timeout_s: float) -> None:
    """The broker's ``ping()`` when it has one; else a trivial query on a connection to its file.

    The file and its folder are created when missing, as the broker itself
    does on first use.
    """
    ping = getattr(broker, "ping", None)
    if callable(ping):
        ping()
        return
    path = Path(broker.path)  # type: ignore[attr-defined]  # a SQLite broker (the caller checked)
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=timeout_s)
    try:
        connection.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    finally:
        connection.close()


def _bounded(component: str, check: Callable[[], None], timeout_s: float) -> None:
    """Run ``check`` in a daemon thread; raise naming ``component`` if it fails or is late.

    A check still running at the deadline is left to its driver's own
    timeouts; its answer is ignored.
    """
    outcome: list[BaseException | None] = []
    done = threading.Event()

    def run() -> None:
        try:
            check()
        except BaseException as error:  # any failure means "not ready"
            outcome.append(error)
        else:
            outcome.append(None)
        finally:
            done.set()

    threading.Thread(target=run, name=f"preview-health-{component}", daemon=True).start()
    if not done.wait(timeout_s):
        raise BrokerUnavailableError(f"{component}: no answer within {timeout_s:g} s")
    error = outcome[0]
    if error is not None:
        reason = str(error) or repr(error)
        prefix = f"{component}: "
        if reason.startswith(prefix):  # store errors may name their component already
            reason = reason[len(prefix):]
        raise BrokerUnavailableError(f"{prefix}{reason}") from None
