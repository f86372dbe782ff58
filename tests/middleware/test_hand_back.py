"""A worker stopping mid-message hands it back: the job says ``queued`` first, whatever happens."""

from __future__ import annotations

import logging

import dramatiq
import pytest
from dramatiq import Message, MessageProxy
from dramatiq.middleware import Middleware, Shutdown

from preview_actors.brokers.stub import StubBroker
from preview_actors.middleware.retries import Retries


class EnqueueSpy(Middleware):
    def __init__(self, events: list[str]) -> None:
        self.events = events

    def before_enqueue(self, broker: dramatiq.Broker, message: Message, delay: int | None) -> None:
        self.events.append(f"enqueue {message.message_id}")


def handed_back(on_hand_back: object, events: list[str]) -> MessageProxy:
    broker = StubBroker(middleware=[EnqueueSpy(events)])
    dramatiq.actor(lambda job_id: None, broker=broker, actor_name="stage", queue_name="q")
    proxy = MessageProxy(Message(queue_name="q", actor_name="stage", args=("job-1",), kwargs={}, options={}))
    Retries(on_hand_back=on_hand_back).after_process_message(broker, proxy, exception=Shutdown())  # type: ignore[arg-type]
    return proxy


def test_the_status_is_written_before_the_message_is_enqueued_again() -> None:
    events: list[str] = []
    proxy = handed_back(lambda message: events.append(f"status {message.args[0]}"), events)
    assert events == ["status job-1", f"enqueue {proxy.message_id}"]


def test_a_failing_status_write_does_not_stop_the_hand_back(caplog: pytest.LogCaptureFixture) -> None:
    events: list[str] = []

    def store_down(message: MessageProxy) -> None:
        raise ConnectionError("job store unreachable")

    proxy = handed_back(store_down, events)
    assert events == [f"enqueue {proxy.message_id}"]
    assert any(
        record.levelno == logging.WARNING and "regardless" in record.getMessage() and record.exc_info
        for record in caplog.records
    )
