"""Runs the reconciliation (:mod:`preview_actors.reconcile`) periodically in each worker.

Every worker process starts a daemon thread once it has booted; each thread
tries a pass every ``PREVIEW_RECONCILE_INTERVAL_S`` (with up to
:data:`JITTER` of it added, so processes started together spread out), and the
job store's lease lets only one pass run at a time across every worker and
machine. A pass that cannot reach the store or the broker logs a warning and
the next one tries again. ``PREVIEW_RECONCILE_INTERVAL_S=0`` starts no thread.
"""

from __future__ import annotations

import logging
import random
import threading

import dramatiq
from dramatiq.middleware import Middleware

from ..errors import BrokerUnavailableError
from ..reconcile import Reconciler
from ..settings import Settings
from ..store import JobStore

logger = logging.getLogger(__name__)

#: Largest share of the interval added at random to each wait.
JITTER = 0.1
#: How long a stopping worker waits for a pass under way to end, seconds.
STOP_TIMEOUT_S = 5.0


class Reconciliation(Middleware):
    """Starts the reconciliation thread after the worker boots and stops it before the worker shuts down."""

    def __init__(self, store: JobStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if self.settings.reconcile_interval_s <= 0 or self._thread is not None:
            return
        reconciler = Reconciler(broker, self.store, self.settings)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(reconciler,), name="preview-reconcile", daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        thread, self._thread = self._thread, None
        self._stop.set()
        if thread is not None:
            thread.join(STOP_TIMEOUT_S)

    def _run(self, reconciler: Reconciler) -> None:
        interval_s = self.settings.reconcile_interval_s
        while not self._stop.wait(interval_s * (1 + random.uniform(0, JITTER))):
            try:
                reconciler.run_once()
            except BrokerUnavailableError as error:
                logger.warning("Reconciliation pass skipped: %s", error)
            except Exception:
                logger.exception("Reconciliation pass failed.")
