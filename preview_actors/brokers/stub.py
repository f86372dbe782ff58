"""Dramatiq's in-memory StubBroker, for tests, with the delivery semantics of the real brokers.

Dramatiq's stub consumer drops the messages a stopping worker had taken and
never ran (its ``requeue`` does nothing): here they are put back on their
queue, as every other broker does. Its consumers also obey the broker's
:class:`~preview_actors.brokers.intake.Intake`: a prefetch limit per queue,
and no new message for a worker that is stopping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from queue import Queue
from typing import Any

from dramatiq.broker import Consumer, MessageProxy
from dramatiq.brokers.stub import StubBroker as DramatiqStubBroker
from dramatiq.brokers.stub import _StubConsumer
from dramatiq.errors import QueueNotFound

from .intake import Intake

__all__ = ["StubBroker"]

#: How long a consumer of a stopping worker waits between two looks at nothing, milliseconds.
STOPPED_POLL_MS = 100


class StubBroker(DramatiqStubBroker):
    """Dramatiq's ``StubBroker`` (same parameters) with an :class:`Intake` and a working ``requeue``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Prefetch limits, and which consumers stopped taking (their worker is stopping).
        self.intake = Intake()

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 100) -> Consumer:
        """A consumer of ``queue_name``; ``prefetch`` is capped by :attr:`intake`'s limit for the queue.

        Raises:
          QueueNotFound: when the queue was never declared.
        """
        try:
            queue = self.queues[queue_name]
        except KeyError:
            raise QueueNotFound(queue_name) from None
        prefetch = self.intake.prefetch(queue_name, prefetch)
        return _Consumer(self, queue, self.dead_letters_by_queue[queue_name], prefetch, timeout)


class _Consumer(_StubConsumer):
    def __init__(
        self, broker: StubBroker, queue: Queue[bytes], dead_letters: list[MessageProxy], prefetch: int, timeout: int
    ) -> None:
        super().__init__(queue, dead_letters, prefetch, timeout)  # type: ignore[no-untyped-call]  # dramatiq's, untyped
        self.intake = broker.intake
        self._thread = threading.current_thread()  # a worker's consumer thread: see Intake

    def __next__(self) -> MessageProxy | None:
        if not self.intake.taking(self._thread):
            time.sleep(min(self.timeout, STOPPED_POLL_MS) / 1000)
            return None
        message: MessageProxy | None = super().__next__()  # type: ignore[no-untyped-call]  # dramatiq's, not annotated
        if message is not None and not self.intake.taking(self._thread):
            self.requeue([message])  # taken while the worker began to stop: another worker's
            return None
        return message

    def requeue(self, messages: Iterable[MessageProxy]) -> None:
        """Put taken, unprocessed messages back at the end of their queue."""
        for message in messages:
            self.queue.put(message.encode())
            self.queue.task_done()  # the original delivery is settled; the copy is pending
            self.prefetch_semaphore.release()
