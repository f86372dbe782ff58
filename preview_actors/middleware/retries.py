"""Retries with exponential backoff and jitter, and none for permanent errors.

Dramatiq's own ``Retries`` is the model; this one differs in three ways:
a :class:`~preview_actors.errors.PermanentJobError` fails the message at once
(it is then dead-lettered by the broker); a worker shutting down, or a render
waiting for a free slot, hands the message on without counting a retry; and the time of the next attempt is kept
in ``message.options["retry_at_ms"]`` so the job status can show it.

A message handed on by a stopping worker is enqueued again under its id,
before the interrupted delivery is acknowledged; the broker settles that
delivery only, and the stopping worker takes nothing more (see
:mod:`.intake`), so the copy waits for another worker. ``on_hand_back`` runs
just before that enqueue — the job's status must say ``queued`` before
another worker can start the job — and whatever it raises is logged, never
allowed to stop the hand-back.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.common import compute_backoff, current_millis
from dramatiq.middleware import Retries as DramatiqRetries
from dramatiq.middleware import Shutdown

from ..concurrency import RenderSlotBusy
from ..errors import JobCancelled, PermanentJobError
from ..redaction import redact
from .durable import enqueue_durably

#: Delay before a job that found no free render slot tries again, milliseconds (jittered up to twice).
SLOT_WAIT_MS = 250


class Retries(DramatiqRetries):
    """Parameters:
    on_hand_back: called with a message a stopping worker hands on, before it is enqueued again.
    **kwargs: dramatiq's ``Retries`` parameters (``max_retries``, ``min_backoff`` and
      ``max_backoff`` in milliseconds…).
    """

    def __init__(self, *, on_hand_back: Callable[[dramatiq.MessageProxy], None] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.on_hand_back = on_hand_back

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
            enqueue_durably(broker, message.copy(), delay=delay_ms)
            return
        if isinstance(exception, JobCancelled):
            return  # nothing left to do: the message is acknowledged and the pipeline stops
        if isinstance(exception, Shutdown):
            self.logger.info("Worker stopping; handing message %s on.", message.message_id)
            if self.on_hand_back is not None:
                try:
                    self.on_hand_back(message)
                except Exception:
                    self.logger.warning("Handing message %s on regardless of:", message.message_id, exc_info=True)
            enqueue_durably(broker, message.copy())
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
        enqueue_durably(broker, message.copy(), delay=backoff_ms)
