"""Dramatiq's ``Retries``, extended with this package's cases rather than rewritten.

The standard path — a failure retried with exponential backoff and jitter,
``max_retries``, ``retry_when``, ``throws``, ``Retry(delay=…)``,
``on_retry_exhausted`` — is dramatiq's own
(:meth:`dramatiq.middleware.Retries.after_process_message`), reached through
``super()``. What this subclass adds:

- a :class:`~preview_actors.errors.PermanentJobError` fails the message at
  once (it is then dead-lettered by the broker), as an actor's ``throws`` does;
- a render that found no free slot waits :data:`SLOT_WAIT_MS` (jittered) and
  a cancelled job stops, neither counting a retry;
- a worker shutting down hands the message on without counting a retry;
- the time of the next attempt is kept in ``message.options["retry_at_ms"]``
  (milliseconds since the epoch) so the job status can show it;
- the traceback kept with the message (``options["traceback"]``, also in a
  dead letter and an ``on_retry_exhausted`` notice) is redacted;
- every enqueue survives a broker that is briefly away
  (:func:`~.durable.enqueue_durably`).

The last three ride on dramatiq's code path unchanged: ``super()`` is handed
the broker behind a small adapter (:class:`_RetryBroker`) whose ``enqueue``
stamps ``retry_at_ms``, redacts and enqueues durably.

A message handed on by a stopping worker is enqueued again under its id,
before the interrupted delivery is acknowledged; the broker settles that
delivery only, and the stopping worker takes nothing more (see
:mod:`.intake`), so the copy waits for another worker. ``on_hand_back`` runs
just before that enqueue — the job's status must say ``queued`` before
another worker can start the job — and whatever it raises is logged, never
allowed to stop the hand-back.
"""

from __future__ import annotations

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

__all__ = ["SLOT_WAIT_MS", "Retries"]

#: Delay before a job that found no free render slot tries again, milliseconds (jittered up to twice).
SLOT_WAIT_MS = 250


class Retries(DramatiqRetries):
    """Parameters:
    on_hand_back: called with a message a stopping worker hands on, before it is enqueued again.
    **kwargs: dramatiq's ``Retries`` parameters (``max_retries``; ``min_backoff`` and
      ``max_backoff`` in milliseconds; ``retry_when``).
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
        elif isinstance(exception, JobCancelled):
            pass  # nothing left to do: the message is acknowledged and the pipeline stops
        elif isinstance(exception, Shutdown):
            self._hand_back(broker, message)
        elif isinstance(exception, PermanentJobError):
            self.logger.warning("Permanent failure of message %s: %s", message.message_id, exception)
            message.fail()
        else:
            # dramatiq's hook is unannotated (mypy does not exempt a super() call by module).
            super().after_process_message(  # type: ignore[no-untyped-call]
                _RetryBroker(broker, message), message, result=result, exception=exception
            )
            _redact_traceback(message)  # a failed message keeps it in its dead letter

    def _hand_back(self, broker: dramatiq.Broker, message: dramatiq.MessageProxy) -> None:
        self.logger.info("Worker stopping; handing message %s on.", message.message_id)
        if self.on_hand_back is not None:
            try:
                self.on_hand_back(message)
            except Exception:
                self.logger.warning("Handing message %s on regardless of:", message.message_id, exc_info=True)
        enqueue_durably(broker, message.copy())


class _RetryBroker:
    """The broker as dramatiq's ``Retries`` uses it (``get_actor``, ``enqueue``), with this package's additions.

    ``enqueue`` (the retry) stamps ``retry_at_ms``, redacts the traceback and
    enqueues a copy durably. ``get_actor`` redacts too: dramatiq looks up the
    ``on_retry_exhausted`` actor after recording the traceback and before
    sending it the failed message.
    """

    def __init__(self, broker: dramatiq.Broker, message: dramatiq.MessageProxy) -> None:
        self._broker = broker
        self._message = message

    def get_actor(self, actor_name: str) -> dramatiq.Actor[..., Any]:
        _redact_traceback(self._message)
        return self._broker.get_actor(actor_name)

    def enqueue(self, message: dramatiq.MessageProxy, *, delay: int | None = None) -> dramatiq.Message[Any]:
        message.options["retry_at_ms"] = current_millis() + (delay or 0)
        _redact_traceback(message)
        retry: dramatiq.Message[Any] = message.copy()
        enqueue_durably(self._broker, retry, delay=delay)
        return retry


def _redact_traceback(message: dramatiq.MessageProxy) -> None:
    text = message.options.get("traceback")
    if isinstance(text, str):
        message.options["traceback"] = redact(text)
