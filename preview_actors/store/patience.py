"""Riding out a short job-store outage in a worker.

A render does not need the job store while its renderer runs, so a status
write that fails because the store (Redis, most often) is away for a few
seconds must not kill the render: the worker waits for the store and writes
again. The wait is bounded: beyond :data:`PATIENCE_S` the store's
``BrokerUnavailableError`` goes up to the retry policy as before.

The HTTP edge does not wait (a submit answers 503 at once); only worker code
calls :func:`patiently`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from ..errors import BrokerUnavailableError

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: How long a worker waits for an unreachable job store before giving up on a write, seconds.
PATIENCE_S = 60.0
#: Longest pause between two tries, seconds (the first pause is 0.2 s, doubling).
MAX_WAIT_S = 2.0


def patiently(what: str, call: Callable[[], T], *, patience_s: float = PATIENCE_S) -> T:
    """``call()``, tried again while it raises ``BrokerUnavailableError``, for up to ``patience_s`` seconds.

    ``what`` names the write in the log: one warning (no traceback) when the
    store is first found away, one line when it answered again. Raises the
    last ``BrokerUnavailableError`` once ``patience_s`` has passed; other
    errors are raised at once.
    """
    failures = 0

    def note_failure(retry_state: object) -> None:
        nonlocal failures
        failures += 1
        if failures == 1:
            error = getattr(getattr(retry_state, "outcome", None), "exception", lambda: None)()
            logger.warning("Job store unreachable while %s (%s); waiting for it up to %gs.", what, error, patience_s)

    retrying = Retrying(
        retry=retry_if_exception_type(BrokerUnavailableError),
        wait=wait_exponential(multiplier=0.2, max=MAX_WAIT_S),
        stop=stop_after_delay(patience_s),
        before_sleep=note_failure,
        reraise=True,
    )
    result = retrying(call)
    if failures:
        logger.info("Job store reachable again; %s done after %d failed tries.", what, failures)
    return result
