"""Warns at worker start when the Redis in use would evict or lose queued jobs."""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.middleware import Middleware

from ..redis_readiness import warn_if_unsafe


class StartupChecks(Middleware):
    def __init__(self, store: Any) -> None:
        self.store = store

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        """Once the worker runs (and logs in our format), check the servers it uses."""
        broker_client = getattr(broker, "client", None)
        store_client = getattr(self.store, "client", None)
        if broker_client is not None:
            warn_if_unsafe(broker_client, component="broker")
        if store_client is not None and not _same_server(broker_client, store_client):
            warn_if_unsafe(store_client, component="job store")


def _same_server(first: Any, second: Any) -> bool:
    if first is None:
        return False
    kwargs = [client.connection_pool.connection_kwargs for client in (first, second)]
    return all(k.get("host") == kwargs[0].get("host") and k.get("port") == kwargs[0].get("port") for k in kwargs)
