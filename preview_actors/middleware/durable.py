"""Enqueueing from a worker that survives the broker going away for a while.

When a stage's retry or its pipeline's next stage cannot be enqueued because
the broker is down, the message being processed must not be acknowledged as
if all were well — its job would stop there. So the worker thread keeps
trying (with backoff, as dramatiq itself does for acks) until the broker is
back; should the worker be stopped meanwhile, the message was never
acknowledged and the broker delivers it again.
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
from tenacity import Retrying, before_sleep_log, retry_if_exception_type, stop_after_delay, wait_exponential

from ..brokers import connection_errors

logger = logging.getLogger(__name__)

#: Longest wait between attempts to reach the broker, seconds.
MAX_WAIT_S = 5.0
#: How long to keep trying before giving up (the message is then acknowledged and logged as lost), seconds.
GIVE_UP_AFTER_S = 3600.0


def enqueue_durably(broker: dramatiq.Broker, message: dramatiq.Message[Any], *, delay: int | None = None) -> None:
    """``broker.enqueue(message, delay=delay)``, retried while the broker is unreachable."""
    for attempt in Retrying(
        retry=retry_if_exception_type(connection_errors()),
        wait=wait_exponential(multiplier=0.2, max=MAX_WAIT_S),
        stop=stop_after_delay(GIVE_UP_AFTER_S),
        before_sleep=before_sleep_log(logger, logging.WARNING),
        reraise=True,
    ):
        with attempt:
            broker.enqueue(message, delay=delay)
