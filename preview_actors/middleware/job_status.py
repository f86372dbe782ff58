"""Keeps a job's status in step with what the retry policy decided.

Listed before :class:`~preview_actors.middleware.retries.Retries`, so its
``after_process_message`` runs after the retry decision (dramatiq runs
``after_*`` hooks in reverse order): a failed message means the job is
``failed`` and dead-lettered; otherwise a failure means ``retrying``.

A stage interrupted by a stopping worker is handed on by Retries, which calls
:meth:`JobStatus.handed_back` first: the job is ``queued`` again — not
``rendering`` on a worker that has exited — before another worker can take it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import dramatiq
from dramatiq.middleware import Middleware, Shutdown

from ..concurrency import RenderSlotBusy
from ..errors import BadInputError, JobCancelled, PermanentJobError
from ..redaction import redact
from ..server_paths import ServerPaths
from ..store import JobState, JobStore
from ..timestamps import iso_utc

logger = logging.getLogger(__name__)


class JobStatus(Middleware):
    def __init__(
        self, store: JobStore, stage_of: Callable[[str], str | None], server_paths: ServerPaths | None = None
    ) -> None:
        self.store = store
        #: Maps an actor name to its stage name; other actors are ignored.
        self.stage_of = stage_of
        #: Hides the server's folders in error messages, which clients read (None: hides nothing).
        self.server_paths = server_paths or ServerPaths(())

    def handed_back(self, message: dramatiq.MessageProxy) -> None:
        """The stage of ``message`` was interrupted by a stopping worker and waits for another: ``queued``.

        Raises what the store raises when it cannot be written.
        """
        if self.stage_of(message.actor_name) is None:
            return
        self.store.update(message.args[0], state=JobState.QUEUED, progress=0.0)
        logger.info("Worker stopping; the job is queued for another worker.")

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.MessageProxy,
        *,
        result: object = None,
        exception: BaseException | None = None,
    ) -> None:
        stage = self.stage_of(message.actor_name)
        if exception is None or stage is None or isinstance(exception, (Shutdown, RenderSlotBusy, JobCancelled)):
            return
        job_id = message.args[0]
        permanent = isinstance(exception, PermanentJobError)
        error = {
            "code": ("bad_input" if isinstance(exception, BadInputError) else "permanent_failure")
            if permanent
            else ("retries_exhausted" if message.failed else "stage_failed"),
            "message": redact(self.server_paths.hide(str(exception) or type(exception).__name__)),
            "stage": stage,
            "retryable": not permanent,
            "retries": message.options.get("retries", 0),
        }
        if message.failed:
            self.store.update(job_id, state=JobState.FAILED, error=error, dead_lettered=True)
            logger.error("Job failed in %s and was dead-lettered: %s", stage, error["message"])
            return
        retry_at_ms = message.options.get("retry_at_ms")
        if retry_at_ms:
            error["nextAttemptAt"] = iso_utc(retry_at_ms / 1000)
        self.store.update(job_id, state=JobState.RETRYING, error=error)
        logger.warning("Stage %s failed, retrying: %s", stage, error["message"])
