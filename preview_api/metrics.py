"""``/metrics``: the Prometheus exposition, for the standalone server and for hosts.

The preview metrics live on prometheus-client's default registry, so a host
with its own ``/metrics`` shows them already. With ``PROMETHEUS_MULTIPROC_DIR``
set (several server or worker processes) the answer is collected from every
process's files instead. Either way the gauges are read at the scrape
(``preview_queue_depth`` asks the job store), so the exposition is built in
the threadpool, never on the event loop.
"""

from __future__ import annotations

import gzip

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder, gzip_accepted
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from preview_actors.metrics import exposition_registry


class MetricsApp:
    """An ASGI class (not a function), so ``Route("/metrics", MetricsApp())`` serves it without a redirect.

    Answers like prometheus-client's own ASGI app: the text (or OpenMetrics)
    format the ``Accept`` header asks for, gzip when accepted.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        encoder, content_type = choose_encoder(headers.get("accept", ""))
        compress = gzip_accepted(headers.get("accept-encoding", ""))

        def exposition() -> bytes:
            body = encoder(self.registry)
            return gzip.compress(body) if compress else body

        answer = {"Content-Type": content_type, **({"Content-Encoding": "gzip"} if compress else {})}
        await Response(await run_in_threadpool(exposition), headers=answer)(scope, receive, send)


def metrics_app() -> MetricsApp:
    """The metrics endpoint, reading ``PROMETHEUS_MULTIPROC_DIR`` now (at start-up)."""
    return MetricsApp(exposition_registry())
