"""Dramatiq's RabbitMQ broker, with the prefetch limits and stopping of an :class:`Intake`.

Deliveries: RabbitMQ settles by delivery tag, one per delivery on the
consumer's channel, so an ack never touches a copy handed back under the same
message id. What a consumer took and never settled goes back to its queue
when the consumer's channel closes.

Prefetch: the consumer's ``basic_qos`` prefetch count is the worker's
prefetch capped by the intake's limit for the queue.

Stopping: once the worker a consumer serves begins to stop, the consumer
cancels its subscription (RabbitMQ then delivers to other consumers only, and
pika rejects, with requeue, what it had buffered) and keeps driving its
connection — heartbeats, and the acks worker threads post to it — until the
worker closes it. A message received in the instant the worker began to stop
is rejected with requeue, for another worker.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import pika.exceptions
from dramatiq.broker import Consumer, MessageProxy
from dramatiq.brokers.rabbitmq import RabbitmqBroker as DramatiqRabbitmqBroker
from dramatiq.brokers.rabbitmq import _RabbitmqConsumer
from dramatiq.errors import ConnectionClosed

from .intake import Intake

__all__ = ["RabbitmqBroker"]

logger = logging.getLogger(__name__)

#: How long a consumer of a stopping worker drives its connection per call, milliseconds.
STOPPED_POLL_MS = 100

#: What pika raises when the channel or connection is unusable.
_PIKA_ERRORS = (pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError)


class RabbitmqBroker(DramatiqRabbitmqBroker):
    """Dramatiq's ``RabbitmqBroker`` (same parameters) with an :class:`Intake`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: Prefetch limits, and which consumers stopped taking (their worker is stopping).
        self.intake = Intake()

    @property
    def consumer_class(self) -> type[_Consumer]:
        return _Consumer

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> Consumer:
        """A consumer of ``queue_name``; ``prefetch`` is capped by :attr:`intake`'s limit for the queue.

        Raises:
          ConnectionClosed: when RabbitMQ cannot be reached.
        """
        return super().consume(queue_name, self.intake.prefetch(queue_name, prefetch), timeout)


class _Consumer(_RabbitmqConsumer):
    def __init__(self, broker: RabbitmqBroker, queue_name: str, prefetch: int, timeout: int) -> None:
        super().__init__(broker, queue_name, prefetch, timeout)  # type: ignore[no-untyped-call]  # dramatiq's, untyped
        self.intake = broker.intake
        self.timeout = timeout
        self._thread = threading.current_thread()  # a worker's consumer thread: see Intake
        self._subscribed = True

    def __next__(self) -> MessageProxy | None:
        if not self.intake.taking(self._thread):
            self._stop_taking()
            return None
        message: MessageProxy | None = super().__next__()  # type: ignore[no-untyped-call]  # dramatiq's, not annotated
        if message is not None and not self.intake.taking(self._thread):
            self.known_tags.discard(message._tag)
            self._reject(message._tag)
            return None
        return message

    def _stop_taking(self) -> None:
        """Cancel the subscription once, then keep the connection serviced (heartbeats, posted acks)."""
        try:
            if self._subscribed:
                self._subscribed = False
                requeued = self.channel.cancel()
                logger.debug("Stopped consuming %r; %d buffered messages requeued.", self.queue_name, requeued)
            self.connection.sleep(min(self.timeout, STOPPED_POLL_MS) / 1000)
        except _PIKA_ERRORS as error:
            raise ConnectionClosed(error) from None

    def _reject(self, tag: int) -> None:
        try:
            self.channel.basic_nack(tag, requeue=True)
        except _PIKA_ERRORS as error:
            raise ConnectionClosed(error) from None
