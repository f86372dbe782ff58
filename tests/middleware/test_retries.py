"""Retries: dramatiq's own retry path (backoff, ``max_retries``, ``retry_when``, ``Retry(delay)``,
``on_retry_exhausted``) plus this package's cases (a busy render slot, a cancelled job, a shutdown,
a permanent error), the ``retry_at_ms`` the status shows, a redacted traceback, durable enqueues."""

from __future__ import annotations

import time
from typing import Any

import dramatiq
import pytest
from dramatiq import Message, MessageProxy
from dramatiq.middleware import Middleware

from preview_actors.brokers.stub import StubBroker
from preview_actors.concurrency import RenderSlotBusy
from preview_actors.errors import JobCancelled, PermanentJobError
from preview_actors.middleware.retries import SLOT_WAIT_MS, Retries

SECRET_URL = "redis://worker:hunter2-secret@cache:6379/0"


class EnqueueSpy(Middleware):
    """Records each enqueue."""

    def __init__(self) -> None:
        self.enqueued: list[tuple[Message[Any], int | None]] = []

    def before_enqueue(self, broker: dramatiq.Broker, message: Message[Any], delay: int | None) -> None:
        self.enqueued.append((message, delay))


class FlakyBroker(StubBroker):
    """A stub broker whose first ``failures`` enqueues fail as an unreachable server's do."""

    failures = 0

    def enqueue(self, message: Message[Any], *, delay: int | None = None) -> Message[Any]:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("broker unreachable")
        return super().enqueue(message, delay=delay)


def setup(retries: Retries, **options: Any) -> tuple[FlakyBroker, EnqueueSpy, MessageProxy]:
    spy = EnqueueSpy()
    broker = FlakyBroker(middleware=[spy, retries])
    broker.failures = options.pop("failures", 0)
    dramatiq.actor(lambda job_id: None, broker=broker, actor_name="stage", queue_name="q", **options)
    dramatiq.actor(lambda message, info: None, broker=broker, actor_name="exhausted", queue_name="dead")
    proxy = MessageProxy(Message(queue_name="q", actor_name="stage", args=("job-1",), kwargs={}, options={}))
    return broker, spy, proxy


def fail(retries: Retries, broker: dramatiq.Broker, proxy: MessageProxy, error: BaseException) -> None:
    """Run the middleware as the worker does: inside the ``except`` that caught the actor's error."""
    try:
        raise error
    except BaseException as caught:
        retries.after_process_message(broker, proxy, exception=caught)


def test_a_failure_is_retried_with_backoff_and_its_time_is_kept() -> None:
    retries = Retries(min_backoff=1000, max_backoff=1000)
    broker, spy, proxy = setup(retries)
    before_ms = int(time.time() * 1000)

    fail(retries, broker, proxy, RuntimeError("boom"))

    [(message, delay)] = spy.enqueued
    assert delay is not None and 500 <= delay <= 1000
    assert message.options["retries"] == 1 and not proxy.failed
    assert before_ms + delay <= message.options["retry_at_ms"] <= time.time() * 1000 + delay


def test_the_kept_traceback_is_redacted() -> None:
    retries = Retries()
    broker, spy, proxy = setup(retries, max_retries=0, on_retry_exhausted="exhausted")

    fail(retries, broker, proxy, RuntimeError(f"cannot reach {SECRET_URL}"))
    notices = [message for message, _ in spy.enqueued if message.actor_name == "exhausted"]

    assert proxy.failed
    assert "hunter2-secret" not in proxy.options["traceback"] and "RuntimeError" in proxy.options["traceback"]
    assert len(notices) == 1 and "hunter2-secret" not in str(notices[0].args)


def test_a_retried_message_carries_a_redacted_traceback() -> None:
    retries = Retries()
    broker, spy, proxy = setup(retries)
    fail(retries, broker, proxy, RuntimeError(f"cannot reach {SECRET_URL}"))
    [(message, _)] = spy.enqueued
    assert "hunter2-secret" not in message.options["traceback"]


def test_retry_when_decides_instead_of_max_retries() -> None:
    retries = Retries(max_retries=20, retry_when=lambda retries, error: False)
    broker, spy, proxy = setup(retries)
    fail(retries, broker, proxy, RuntimeError("boom"))
    assert proxy.failed and spy.enqueued == []


def test_a_retry_exception_sets_its_own_delay() -> None:
    retries = Retries(min_backoff=60_000)
    broker, spy, proxy = setup(retries)
    before_ms = int(time.time() * 1000)

    fail(retries, broker, proxy, dramatiq.Retry(delay=1234))

    [(message, delay)] = spy.enqueued
    assert delay == 1234
    assert before_ms + 1234 <= message.options["retry_at_ms"] <= time.time() * 1000 + 1234


def test_exhausted_retries_fail_the_message_and_notify_on_retry_exhausted() -> None:
    retries = Retries()
    broker, spy, proxy = setup(retries, max_retries=1, on_retry_exhausted="exhausted")

    fail(retries, broker, proxy, RuntimeError("first"))
    assert not proxy.failed
    retried = MessageProxy(spy.enqueued[0][0])
    fail(retries, broker, retried, RuntimeError("second"))

    assert retried.failed
    [(notice, _)] = [(m, d) for m, d in spy.enqueued if m.actor_name == "exhausted"]
    assert notice.args[1] == {"retries": 1, "max_retries": 1}


@pytest.mark.parametrize("error", [PermanentJobError("bad input"), ValueError("thrown")])
def test_permanent_errors_and_throws_fail_at_once(error: BaseException) -> None:
    retries = Retries()
    broker, spy, proxy = setup(retries, throws=(ValueError,))
    fail(retries, broker, proxy, error)
    assert proxy.failed and spy.enqueued == [] and "retries" not in proxy.options


def test_a_busy_render_slot_waits_without_counting_a_retry() -> None:
    retries = Retries()
    broker, spy, proxy = setup(retries)
    fail(retries, broker, proxy, RenderSlotBusy("all 2 render slots are taken"))
    [(message, delay)] = spy.enqueued
    assert delay is not None and SLOT_WAIT_MS <= delay <= 2 * SLOT_WAIT_MS
    assert "retries" not in message.options and not proxy.failed


def test_a_cancelled_job_is_neither_retried_nor_failed() -> None:
    retries = Retries()
    broker, spy, proxy = setup(retries)
    fail(retries, broker, proxy, JobCancelled("cancelled"))
    assert spy.enqueued == [] and not proxy.failed


def test_a_retry_survives_a_broker_that_is_briefly_unreachable() -> None:
    retries = Retries(min_backoff=10, max_backoff=10)
    broker, spy, proxy = setup(retries, failures=2)
    fail(retries, broker, proxy, RuntimeError("boom"))
    [(message, delay)] = spy.enqueued
    assert message.message_id == proxy.message_id and delay is not None
