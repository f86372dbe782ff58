"""The log-context middleware resets a context on the thread that set it.

A channel or connection that closes under a running message makes the broker
deliver that message again — possibly to another thread of the same worker
while the first still runs. Both deliveries carry the same message id.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Middleware

from preview_actors import logs
from preview_actors.middleware import LogContext


def _stage_of(actor_name: str) -> str | None:
    return "render" if actor_name == "slow_render" else None


class _Finished(Middleware):
    """Sets an event once a message's after hooks have run (it is listed before LogContext, so it runs after)."""

    def __init__(self) -> None:
        self.first_done = threading.Event()

    def after_process_message(self, broker: dramatiq.Broker, message: dramatiq.MessageProxy, **kwargs: Any) -> None:
        self.first_done.set()


def test_two_deliveries_of_one_message_at_once_each_reset_their_own_context(caplog: pytest.LogCaptureFixture) -> None:
    # Given a worker with two threads and one message delivered twice (the same message id)
    finished = _Finished()
    broker = StubBroker(middleware=[finished, LogContext(_stage_of, "console")])
    second_started = threading.Event()
    started: list[int] = []
    seen: list[dict[str, Any]] = []
    lock = threading.Lock()

    @dramatiq.actor(broker=broker, actor_name="slow_render")
    def slow_render(job_id: str) -> None:
        with lock:
            started.append(threading.get_ident())
            first = len(started) == 1
        if first:  # the first delivery ends while the second runs
            assert second_started.wait(10)
        else:
            second_started.set()
            assert finished.first_done.wait(10)
        seen.append(dict(logs.log_context.get()))

    message = slow_render.message("job-1")
    broker.enqueue(message)
    broker.enqueue(message)

    # When both run at once, the first ending first
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=50)
    worker.start()
    try:
        broker.join(slow_render.queue_name, timeout=10_000)
        worker.join()
    finally:
        worker.stop()

    # Then each saw its context, and no hook failed
    assert len(set(started)) == 2
    assert [context["jobId"] for context in seen] == ["job-1", "job-1"]
    failures = [record for record in caplog.records if record.levelno >= logging.CRITICAL]
    assert failures == [], [record.getMessage() + str(record.exc_info) for record in failures]


def test_an_after_hook_on_another_thread_neither_raises_nor_leaks_context() -> None:
    middleware = LogContext(_stage_of, "console")
    broker = StubBroker(middleware=[])
    message: dramatiq.Message[Any] = dramatiq.Message(
        queue_name="q", actor_name="slow_render", args=("job-1",), kwargs={}, options={}
    )
    proxy = dramatiq.MessageProxy(message)
    before_done = threading.Event()
    after_done = threading.Event()
    outcome: dict[str, Any] = {}

    def worker_thread() -> None:
        # Given the context set for a message on this thread
        middleware.before_process_message(broker, proxy)
        before_done.set()
        after_done.wait(10)
        outcome["before next message"] = dict(logs.log_context.get())
        # the thread's next message starts from a clean context
        other = dramatiq.MessageProxy(message.copy(args=("job-2",)))
        middleware.before_process_message(broker, other)
        outcome["next message"] = dict(logs.log_context.get())
        middleware.after_process_message(broker, other)
        outcome["after next message"] = dict(logs.log_context.get())

    thread = threading.Thread(target=worker_thread)
    thread.start()
    assert before_done.wait(10)

    # When its after hook runs on another thread (here: this one)
    try:
        middleware.after_process_message(broker, proxy, exception=ConnectionError("channel closed"))
    finally:
        after_done.set()
        thread.join(10)

    # Then nothing raised, this thread's context is untouched, and the first thread's next message is clean
    assert logs.log_context.get() == {}
    assert outcome["next message"]["jobId"] == "job-2"
    assert outcome["after next message"] == {}
