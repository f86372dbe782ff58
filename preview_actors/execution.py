"""One render of a job at a time: a per-job execution lease in the job store.

Brokers deliver at least once. A message can be delivered again while a live
worker still renders it — RabbitMQ's delivery acknowledgement timeout
(``consumer_timeout``) closing the channel, a network partition, a worker
paused past its Redis heartbeat or SQLite lease and then resumed. The render
stage therefore takes the lease ``job:<job_id>`` before it starts an attempt
and renews it while the renderer runs. A delivery that finds the lease held
by another raises :class:`JobRenderingElsewhere`: its message goes back to
the queue with a short delay, counting no retry and no attempt (the way a
render waits for a free render slot), and once the render is done the copy
finds the job rendered or finished and renders nothing.

The lease expires :data:`LEASE_TTL_S` after its last renewal, so a worker
that dies (SIGKILL, the OOM killer) holds up its job's next delivery for at
most that long. A renewal that fails because the store is away is tried again
at the next tick; a renewal refused because another owner holds the lease
marks it :attr:`~ExecutionLease.lost`, and the render stops.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator

from .concurrency import RenderSlotBusy
from .errors import BrokerUnavailableError
from .store import JobStore
from .store.patience import patiently

logger = logging.getLogger(__name__)

#: How long the lease outlives its last renewal (a dead worker's job waits this long), seconds.
LEASE_TTL_S = 15.0
#: A held lease is renewed this many times per ``LEASE_TTL_S``.
RENEWALS_PER_TTL = 3


class JobRenderingElsewhere(RenderSlotBusy):
    """Another delivery of this job holds its execution lease; this one waits and comes back.

    A :class:`RenderSlotBusy`, so the retry policy re-enqueues the message
    with a short delay, counting no retry, and the job's status is untouched.
    """

    def __init__(self, job_id: str, reason: str) -> None:
        super().__init__(f"job {job_id} {reason}")
        self.job_id = job_id


def lease_name(job_id: str) -> str:
    """The name of ``job_id``'s execution lease in the job store."""
    return f"job:{job_id}"


class ExecutionLease:
    """The execution lease of one job, held by one delivery (its owner: host, pid and a random id)."""

    def __init__(self, store: JobStore, job_id: str, *, ttl_s: float | None = None) -> None:
        self.store = store
        self.job_id = job_id
        self.name = lease_name(job_id)
        self.ttl_s = LEASE_TTL_S if ttl_s is None else ttl_s
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._lost = threading.Event()
        self._released = threading.Event()
        self._renewer: threading.Thread | None = None

    @property
    def lost(self) -> bool:
        """Whether another owner took the lease while this one held it."""
        return self._lost.is_set()

    def acquire(self) -> bool:
        """Take the lease; return False when another delivery holds it. Raises ``BrokerUnavailableError``."""
        return self.store.acquire_lease(self.name, self.owner, self.ttl_s)

    def renew(self) -> bool:
        """Extend the lease by ``ttl_s``; False when another owner holds it now. Raises ``BrokerUnavailableError``."""
        return self.store.acquire_lease(self.name, self.owner, self.ttl_s)

    def start_renewing(self) -> None:
        """Renew the lease from a daemon thread until :meth:`release`."""
        self._renewer = threading.Thread(target=self._keep, name=f"lease-{self.job_id[:8]}", daemon=True)
        self._renewer.start()

    def _keep(self) -> None:
        interval_s = self.ttl_s / RENEWALS_PER_TTL
        while not self._released.wait(interval_s):
            try:
                renewed = self.renew()
            except BrokerUnavailableError as error:
                logger.warning("Could not renew the execution lease of job %s (trying again): %s", self.job_id, error)
                continue
            if not renewed:
                logger.warning("Job %s: another delivery took its execution lease; this render stops.", self.job_id)
                self._lost.set()
                return

    def release(self) -> None:
        """Stop renewing and give the lease up (if it is still ours); a store that is away lets it expire."""
        self._released.set()
        if self._renewer is not None:
            self._renewer.join()
        try:
            self.store.release_lease(self.name, self.owner)
        except BrokerUnavailableError as error:
            logger.warning("Could not release the execution lease of job %s (it expires by itself): %s", self.job_id, error)


@contextlib.contextmanager
def held(store: JobStore, job_id: str) -> Iterator[ExecutionLease]:
    """Hold ``job_id``'s execution lease, renewed, for the block.

    Raises :class:`JobRenderingElsewhere` when another delivery holds it, and
    ``BrokerUnavailableError`` when the store stays unreachable (see
    :func:`~.store.patience.patiently`).
    """
    lease = ExecutionLease(store, job_id)
    if not patiently(f"taking job {job_id}'s execution lease", lease.acquire):
        raise JobRenderingElsewhere(job_id, "is being rendered by another delivery")
    lease.start_renewing()
    try:
        yield lease
    finally:
        lease.release()
