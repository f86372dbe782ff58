"""Retries with exponential backoff and jitter, and none for permanent errors.

Dramatiq's own ``Retries`` is the model; this one differs in three ways:
a :class:`~preview_actors.errors.PermanentJobError` fails the message at once
(it is then dead-lettered by the broker); a worker shutting down, or a render
waiting for a free slot, hands the message on without counting a retry; and the time of the next attempt is kept
in ``message.options["retry_at_ms"]`` so the job status can show it.
"""

from __future__ import annotations

import traceback

import dramatiq
from dramatiq.common import compute_backoff, current_millis
from dramatiq.middleware import Shutdown
from dramatiq.middleware import Retries as DramatiqRetries

from ..concurrency import RenderSlotBusy
from ..errors import JobCancelled, PermanentJobError
from .durable import enqueue_durably
from ..redaction import redact

#: Delay before a job that found no free render slot tries again, milliseconds (jittered up to twice).
SLOT_WAIT_MS = 250


class Retries(DramatiqRetries):
    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.MessageProxy,
        *,
        result: object = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is None:
            return
        if isinstance(exception, RenderSlotBusy):
            _, delay_ms = compute_backoff(0, factor=SLOT_WAIT_MS, max_backoff=2 * SLOT_WAIT_MS, jitter=True)
            enqueue_durably(broker, message, delay=delay_ms)
            return
        if isinstance(exception, JobCancelled):
            return  # nothing left to do: the message is acknowledged and the pipeline stops
        if isinstance(exception, Shutdown):
            self.logger.info("Worker stopping; handing message %s on.", message.message_id)
            enqueue_durably(broker, message)
            return
        actor = broker.get_actor(message.actor_name)
        throws = message.options.get("throws") or actor.options.get("throws") or ()
        if isinstance(exception, PermanentJobError) or (throws and isinstance(exception, throws)):
            self.logger.warning("Permanent failure of message %s: %s", message.message_id, exception)
            message.fail()
            return
        retries = message.options.setdefault("retries", 0)
        message.options["retries"] = retries + 1
        message.options["traceback"] = redact(traceback.format_exc(limit=30))  # kept with the dead letter
        max_retries = message.options.get("max_retries", actor.options.get("max_retries", self.max_retries))
        if retries >= max_retries:
            self.logger.warning("Retries exceeded for message %s.", message.message_id)
            message.fail()
            return
        min_backoff = message.options.get("min_backoff") or actor.options.get("min_backoff", self.min_backoff)
        max_backoff = message.options.get("max_backoff") or actor.options.get("max_backoff", self.max_backoff)
        _, backoff_ms = compute_backoff(retries, factor=min_backoff, max_backoff=max_backoff, jitter=True)
        message.options["retry_at_ms"] = current_millis() + backoff_ms
        self.logger.info("Retrying message %s in %d ms.", message.message_id, backoff_ms)
        enqueue_durably(broker, message, delay=backoff_ms)
