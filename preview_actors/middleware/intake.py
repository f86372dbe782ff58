"""Tells the broker what its worker may take (see :mod:`preview_actors.brokers.intake`).

At worker boot, the prefetch of each queue named in ``per_thread`` is capped
at that many messages per worker thread: with ``{"preview-render": 1}`` a
worker started with ``--threads 4`` holds at most 4 render messages, so a
second worker gets the fifth render instead of waiting behind it. Other
queues keep dramatiq's default (twice the threads; ``dramatiq_queue_prefetch``
sets it for every queue).

When the worker begins to stop (``before_worker_shutdown``, emitted before
dramatiq's :class:`~dramatiq.middleware.ShutdownNotifications` interrupts
the running actors — list this middleware before it), its consumers stop
taking messages and its idle worker threads stop picking up work, so a
message an interrupted actor hands back is left for other workers instead of
being run in full by the stopping one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import dramatiq
from dramatiq.middleware import Middleware

from ..brokers.intake import Intake

logger = logging.getLogger(__name__)


class WorkerIntake(Middleware):
    """Parameters:
    per_thread: queue name → most messages of that queue a worker holds per worker thread.

    Raises:
      ValueError: when a limit is not a positive integer.
    """

    def __init__(self, per_thread: Mapping[str, int]) -> None:
        for queue_name, limit in per_thread.items():
            if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
                raise ValueError(f"per-thread prefetch of {queue_name!r} must be a positive integer, got {limit!r}")
        self.per_thread = dict(per_thread)

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        intake = _intake_of(broker)
        if intake is None:
            return
        for queue_name, limit in self.per_thread.items():
            intake.limit_prefetch(queue_name, limit * worker.worker_threads)

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        intake = _intake_of(broker)
        if intake is not None:
            intake.stop_taking(worker.consumers.values())
        # What Worker.stop does next, done before the running actors are interrupted:
        # an idle thread would otherwise run the message an interrupted one hands back.
        for thread in worker.workers:
            thread.stop()


def _intake_of(broker: dramatiq.Broker) -> Intake | None:
    intake = getattr(broker, "intake", None)
    if isinstance(intake, Intake):
        return intake
    logger.warning("Broker %s has no intake control: prefetch limits and stopping do not apply.", type(broker).__name__)
    return None
