"""``/metrics``: prometheus-client's ASGI app, for the standalone server and for hosts.

The preview metrics live on prometheus-client's default registry, so a host
with its own ``/metrics`` shows them already. With ``PROMETHEUS_MULTIPROC_DIR``
set (several server or worker processes) the answer is collected from every
process's files instead.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, make_asgi_app
from starlette.types import Receive, Scope, Send

from preview_actors.metrics import exposition_registry


class MetricsApp:
    """An ASGI class (not a function), so ``Route("/metrics", MetricsApp())`` serves it without a redirect."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._app = make_asgi_app(registry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


def metrics_app() -> MetricsApp:
    """The metrics endpoint, reading ``PROMETHEUS_MULTIPROC_DIR`` now (at start-up)."""
    return MetricsApp(exposition_registry())

