"""Warns at worker start about servers and broker settings that would lose, cut short or repeat renders.

- The Redis in use would evict or lose queued jobs (see :mod:`..redis_readiness`).
- A setting that bounds how long a render may take is shorter than a render
  may legitimately take (:func:`render_time_warnings`): dramatiq's
  ``time_limit`` of the render actor, RabbitMQ's ``consumer_timeout``, the
  Redis broker's ``heartbeat_timeout`` and the SQLite broker's ``lease_ms``
  (the README's "Settings that bound a render" explains each).
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware, TimeLimit

from ..redis_readiness import warn_if_unsafe
from ..settings import Settings

logger = logging.getLogger(__name__)

#: The render actor's name (the actors module imports the runtime, which imports this module).
RENDER_ACTOR = "preview_render"
#: RabbitMQ's delivery acknowledgement timeout when the server sets none (``consumer_timeout``), milliseconds.
RABBITMQ_DEFAULT_CONSUMER_TIMEOUT_MS = 1_800_000
#: Time a render message may take beyond PREVIEW_RENDER_TIMEOUT_S before its acknowledgement
#: (stopping the renderer, recording the status), milliseconds.
ACK_SLACK_MS = 60_000
#: A broker's redelivery deadline must be this many times the period at which a live consumer renews it.
RENEWAL_MARGIN = 2


class StartupChecks(Middleware):
    def __init__(self, store: Any, settings: Settings | None = None) -> None:
        self.store = store
        #: Checked against the broker's render-bounding settings, when given.
        self.settings = settings

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        """Once the worker runs (and logs in our format), check the servers it uses and the render bounds."""
        broker_client = getattr(broker, "client", None)
        store_client = getattr(self.store, "client", None)
        if broker_client is not None:
            warn_if_unsafe(broker_client, component="broker")
        if store_client is not None and not _same_server(broker_client, store_client):
            warn_if_unsafe(store_client, component="job store")
        if self.settings is not None:
            for warning in render_time_warnings(broker, self.settings):
                logger.warning(warning)


def render_time_warnings(broker: dramatiq.Broker, settings: Settings) -> list[str]:
    """What in ``broker``'s settings would stop or redeliver a render that runs within PREVIEW_RENDER_TIMEOUT_S.

    Each warning names the setting and the value it needs. RabbitMQ does not
    report its ``consumer_timeout`` to clients: only a render timeout beyond
    its default is caught here.
    """
    warnings = []
    render_timeout_ms = int(settings.render_timeout_s * 1000)
    time_limit_ms = _render_time_limit_ms(broker)
    if time_limit_ms is not None and time_limit_ms <= render_timeout_ms:
        warnings.append(
            f"dramatiq's time_limit of {RENDER_ACTOR} ({time_limit_ms} ms) does not exceed PREVIEW_RENDER_TIMEOUT_S "
            f"({settings.render_timeout_s:g} s): dramatiq would interrupt renders before the renderer times out. "
            "Leave the actor's time_limit to preview-worker (render timeout + 120 s)."
        )
    kind, module = type(broker).__name__, type(broker).__module__
    if kind == "RabbitmqBroker" and render_timeout_ms + ACK_SLACK_MS > RABBITMQ_DEFAULT_CONSUMER_TIMEOUT_MS:
        warnings.append(
            f"PREVIEW_RENDER_TIMEOUT_S ({settings.render_timeout_s:g} s) exceeds what RabbitMQ's default "
            f"consumer_timeout ({RABBITMQ_DEFAULT_CONSUMER_TIMEOUT_MS // 1000} s) allows: set consumer_timeout "
            f"(rabbitmq.conf) or the queue's x-consumer-timeout above {(render_timeout_ms + ACK_SLACK_MS) // 1000} s, "
            "or RabbitMQ closes the channel of long renders and delivers them again."
        )
    warnings += _redelivery_warnings(broker, module)
    return warnings


def _redelivery_warnings(broker: dramatiq.Broker, module: str) -> list[str]:
    """Our Redis and SQLite brokers deliver a message again when its worker stops renewing it: is the
    deadline comfortably beyond the renewal period? (Their modules are imported only when in use.)"""
    warnings = []
    if module == "preview_actors.brokers.redis":
        from ..brokers.redis import HEARTBEAT_INTERVAL_MS, RedisBroker

        heartbeat_timeout_ms = int(broker.heartbeat_timeout) if isinstance(broker, RedisBroker) else 0
        if heartbeat_timeout_ms < RENEWAL_MARGIN * HEARTBEAT_INTERVAL_MS:
            warnings.append(
                f"the Redis broker's heartbeat_timeout ({heartbeat_timeout_ms} ms) is under {RENEWAL_MARGIN} heartbeat "
                f"periods ({RENEWAL_MARGIN * HEARTBEAT_INTERVAL_MS} ms): messages of live, busy workers would be "
                "delivered again."
            )
    if module == "preview_actors.brokers.sqlite":
        from ..brokers.sqlite import SQLiteBroker

        if not isinstance(broker, SQLiteBroker):
            return warnings
        lease_ms = int(broker.lease_ms)
        renew_period_ms = lease_ms // 3 + int(broker.poll_interval_ms)
        if lease_ms < RENEWAL_MARGIN * renew_period_ms:
            warnings.append(
                f"the SQLite broker's lease_ms ({lease_ms} ms) is under {RENEWAL_MARGIN} renewal periods "
                f"({RENEWAL_MARGIN * renew_period_ms} ms): messages of live workers would be delivered again."
            )
    return warnings


def _render_time_limit_ms(broker: dramatiq.Broker) -> int | None:
    """The time limit dramatiq applies to the render actor, milliseconds; None without a TimeLimit middleware."""
    time_limits = [middleware for middleware in broker.middleware if isinstance(middleware, TimeLimit)]
    if not time_limits:
        return None
    try:
        actor = broker.get_actor(RENDER_ACTOR)
    except dramatiq.errors.ActorNotFound:
        return None
    limit = actor.options.get("time_limit", time_limits[0].time_limit)
    return None if limit is None else int(limit)


def _same_server(first: Any, second: Any) -> bool:
    if first is None:
        return False
    kwargs = [client.connection_pool.connection_kwargs for client in (first, second)]
    return all(k.get("host") == kwargs[0].get("host") and k.get("port") == kwargs[0].get("port") for k in kwargs)
