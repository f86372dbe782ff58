"""Prometheus metrics of the pipeline's stages, and the worker's own ``/metrics`` endpoint.

For the pipeline's actors it observes the time spent in each stage and counts
retries, dead letters and failed jobs; succeeded jobs are counted by
:func:`preview_actors.stages.finalize`, which alone knows whether a finalize
really finished its job, and cancelled ones by the worker that takes the
job's cancellation event (see :mod:`preview_actors.cancel`). Gauges are read
when scraped (:mod:`preview_actors.metrics`), so nothing here sets one.

Listed before :class:`~preview_actors.middleware.retries.Retries`, so its
``after_process_message`` runs after the retry decision (dramatiq runs
``after_*`` hooks in reverse order): a retry shows as the message's
``retries`` option having grown, a dead letter as the message having failed.
A render that found no free slot, a shutdown and a cancellation are neither.

In each process ``dramatiq preview_actors`` starts (once its worker has
booted), it tries to serve ``/metrics`` on ``PREVIEW_METRICS_HOST:PREVIEW_METRICS_PORT``
(an IPv4 or IPv6 address or a host name) with prometheus-client's own server
(:func:`prometheus_client.start_http_server`, a daemon thread); the first
process to bind the port serves it. With ``PROMETHEUS_MULTIPROC_DIR``
set the answer covers every process of the worker (each process, as it boots,
first removes the files that processes of an earlier run left there); without
it, that one process's own metrics.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from wsgiref.simple_server import WSGIServer

import dramatiq
from dramatiq.middleware import Middleware
from prometheus_client import start_http_server

from .. import metrics

logger = logging.getLogger(__name__)


class Metrics(Middleware):
    def __init__(self, stage_of: Callable[[str], str | None], *, host: str, port: int) -> None:
        #: Maps an actor name to its stage name; other actors are ignored.
        self.stage_of = stage_of
        #: Where the worker serves ``/metrics``; port 0 disables the server.
        self.host = host
        self.port = port
        #: message id → (monotonic start, seconds; the message's retry count at the start).
        self._started: dict[str, tuple[float, int]] = {}
        self._server: WSGIServer | None = None
        self._booted = False

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        """In a process of ``dramatiq preview_actors`` (not a worker inside another program): start from zero."""
        self._booted = True
        directory = metrics.multiprocess_dir()
        if directory is not None:
            removed = metrics.remove_files_of_earlier_runs(directory)
            if removed:
                logger.debug("Removed %d metrics files of an earlier run from %s.", removed, directory)

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        """In a ``dramatiq`` worker process (logging is set up by now): serve ``/metrics`` unless a sibling does."""
        if self._booted and self.port and self._server is None:
            self._server = self._serve()

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        directory = metrics.multiprocess_dir()
        if self._booted and directory is not None:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid(), directory)

    def before_process_message(self, broker: dramatiq.Broker, message: dramatiq.MessageProxy) -> None:
        if self.stage_of(message.actor_name) is not None:
            self._started[message.message_id] = (time.monotonic(), message.options.get("retries", 0))

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.MessageProxy,
        *,
        result: object = None,
        exception: BaseException | None = None,
    ) -> None:
        started = self._started.pop(message.message_id, None)
        stage = self.stage_of(message.actor_name)
        if started is None or stage is None:
            return
        started_at, retries_before = started
        retried = not message.failed and message.options.get("retries", 0) > retries_before
        if exception is None or retried or message.failed:  # the stage ran to an outcome
            metrics.STAGE_DURATION.labels(stage=stage).observe(time.monotonic() - started_at)
        if retried:
            metrics.JOB_RETRIES.labels(stage=stage).inc()
        if message.failed:
            metrics.JOBS_DEAD_LETTERED.inc()
            metrics.JOBS_COMPLETED.labels(outcome="failed").inc()

    def after_skip_message(self, broker: dramatiq.Broker, message: dramatiq.MessageProxy) -> None:
        self._started.pop(message.message_id, None)

    def _serve(self) -> WSGIServer | None:
        try:
            server, _ = start_http_server(self.port, addr=self.host, registry=metrics.exposition_registry())
        except OSError as error:
            if metrics.multiprocess_dir() is None:
                logger.warning(
                    "Metrics not served from this process: %s:%d: %s. Choose a free port with "
                    "PREVIEW_METRICS_PORT (0: none); with several worker processes also set "
                    "PROMETHEUS_MULTIPROC_DIR, so the process that serves them answers for all.",
                    self.host, self.port, error.strerror or error,
                )  # fmt: skip
            else:
                logger.info("Metrics are served by another process on %s:%d (%s).", self.host, self.port, error.strerror or error)
            return None
        scope = "every process of this worker" if metrics.multiprocess_dir() else "this process"
        host = f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 address, as a URL writes it
        logger.info("Serving Prometheus metrics of %s on http://%s:%d/metrics.", scope, host, self.port)
        return server
