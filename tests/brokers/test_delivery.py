"""Delivery semantics every broker of this project shares, run on each of them.

What dramatiq's own suite exercises (acks, requeue on stop, retries, delays,
dead letters), written down as this project needs it — plus what its brokers
add: an ack settles the one delivery it is given, a stopping worker takes no
new message, and a prefetch limit caps what a consumer holds.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from conftest import broker_url_for, wait_until
from dramatiq.broker import Consumer
from dramatiq.common import current_millis, xq_name
from dramatiq.middleware import ShutdownNotifications

from preview_actors.brokers import create_broker
from preview_actors.middleware.intake import WorkerIntake
from preview_actors.middleware.retries import Retries

KINDS = ["stub", "sqlite", "redis", "rabbitmq"]
QUEUE = "delivery-test"

#: How long a consumer must take nothing for a queue to count as empty, seconds.
QUIET_S = 0.5


class Recorder:
    """How many times an actor saw each argument, and when it last did (epoch ms)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[object] = Counter()
        self.at: dict[object, int] = {}

    def record(self, key: object) -> int:
        with self._lock:
            self.counts[key] += 1
            self.at[key] = current_millis()
            return self.counts[key]


@pytest.fixture(params=KINDS)
def make_broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], dramatiq.Broker]]:
    """Brokers of one kind on one store (file, Redis database, vhost), as ``create_broker`` builds them,
    with the project's WorkerIntake and Retries; the queue is flushed before and after the test."""
    kind = str(request.param)
    url = broker_url_for(kind, tmp_path)
    made: list[dramatiq.Broker] = []
    stub: list[dramatiq.Broker] = []  # the stub keeps its queues in memory: one broker is the store

    def make() -> dramatiq.Broker:
        if stub:
            return stub[0]
        middleware = [
            WorkerIntake({}),
            Retries(max_retries=3, min_backoff=10, max_backoff=50),
            ShutdownNotifications(notify_shutdown=True),
        ]
        broker = create_broker(url, middleware)
        broker.declare_queue(QUEUE)
        if not made:
            broker.flush(QUEUE)
        made.append(broker)
        if kind == "stub":
            stub.append(broker)
        return broker

    yield make
    for broker in made:
        broker.flush(QUEUE)
        broker.close()


@pytest.fixture
def start_worker() -> Iterator[Callable[..., dramatiq.Worker]]:
    workers: list[dramatiq.Worker] = []

    def start(broker: dramatiq.Broker, threads: int = 2) -> dramatiq.Worker:
        worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=50)
        worker.start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        if any(thread.is_alive() for thread in worker.workers):
            worker.stop(timeout=10_000)


def declare(broker: dramatiq.Broker, fn: Callable[..., Any], **options: Any) -> dramatiq.Actor[Any, Any]:
    """The actor ``job`` running ``fn`` on ``broker`` (the stub's brokers are one: declared once)."""
    if "job" in broker.actors:
        actor: dramatiq.Actor[Any, Any] = broker.actors["job"]
        return actor
    return dramatiq.actor(fn, broker=broker, actor_name="job", queue_name=QUEUE, **options)


def interruptible_wait(event: threading.Event, timeout_s: float = 10) -> None:
    """Wait for ``event`` in short sleeps: a worker's Shutdown, raised into the thread, ends it at once."""
    deadline = time.monotonic() + timeout_s
    while not event.is_set() and time.monotonic() < deadline:
        time.sleep(0.005)


def take(consumer: Consumer, timeout_s: float = 10) -> dramatiq.MessageProxy:
    message: dramatiq.MessageProxy = wait_until(lambda: next(consumer), timeout_s=timeout_s, interval_s=0, what="a message")
    return message


def takes_nothing(consumer: Consumer, seconds: float = QUIET_S) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if next(consumer) is not None:
            return False
    return True


def dead_letter_ids(broker: dramatiq.Broker) -> list[str]:
    """Message ids of the queue's dead letters, however the broker keeps them."""
    kind = type(broker).__name__
    if kind == "StubBroker":
        return [message.message_id for message in broker.dead_letters_by_queue[QUEUE]]
    if kind == "SQLiteBroker":
        return [message.message_id for message in broker.dead_letters(QUEUE)]
    if kind == "RedisBroker":
        key = f"{broker.namespace}:{xq_name(QUEUE)}.msgs"
        return [dramatiq.Message.decode(data).message_id for data in broker.client.hvals(key)]
    consumer = broker.consume(xq_name(QUEUE), prefetch=100, timeout=100)
    try:
        ids = []
        while (message := next(consumer)) is not None:
            ids.append(message.message_id)
        return ids  # unacked: back on the dead-letter queue when the consumer closes
    finally:
        consumer.close()


# -- Settling ------------------------------------------------------------------------------


def test_an_ack_settles_only_the_delivery_it_is_given(make_broker: Callable[[], dramatiq.Broker]) -> None:
    broker = make_broker()
    message_id = declare(broker, lambda n: None).send(1).message_id
    consumer = broker.consume(QUEUE, prefetch=2, timeout=50)

    # Given a delivery handed back under its message id before it is acked (a stop, a retry),
    # and the copy taken by the same consumer
    first = take(consumer)
    broker.enqueue(first)
    copy = take(consumer)
    assert copy.message_id == message_id

    # When the first delivery is acked
    consumer.ack(first)

    # Then the copy is still pending: given back when its consumer lets go, taken again, once
    consumer.requeue([copy])
    consumer.close()
    other = make_broker().consume(QUEUE, prefetch=2, timeout=50)
    again = take(other)
    assert again.message_id == message_id
    other.ack(again)
    assert takes_nothing(other)
    other.close()


# -- Stopping -----------------------------------------------------------------------------


def test_a_stopped_worker_gives_back_everything_it_held(
    make_broker: Callable[[], dramatiq.Broker], start_worker: Callable[..., dramatiq.Worker]
) -> None:
    broker = make_broker()
    release, second_worker = threading.Event(), threading.Event()
    first_run, second_run = Recorder(), Recorder()

    def hold(n: int) -> None:
        if second_worker.is_set():
            second_run.record(n)
            return
        first_run.record(n)
        interruptible_wait(release)  # interrupted by the stop (notify_shutdown)

    job = declare(broker, hold)
    for n in range(6):
        job.send(n)

    # Given a worker whose two threads run a job each, holding more in memory (prefetch: twice the threads)
    worker = start_worker(broker, threads=2)
    wait_until(lambda: len(first_run.counts) == 2, what="two jobs running")

    # When it stops: its running jobs are interrupted and handed back, what it held is requeued
    worker.stop(timeout=10_000)
    release.set()

    # Then it started nothing more, and a second worker runs every job exactly once
    assert sum(first_run.counts.values()) == 2, "the stopping worker started another job"
    second_worker.set()
    second = make_broker()
    declare(second, hold)
    start_worker(second, threads=2)
    wait_until(lambda: set(second_run.counts) == set(range(6)), what="the second worker to run every job")
    consumer = second.consume(QUEUE, timeout=50)
    assert takes_nothing(consumer)
    consumer.close()
    assert set(second_run.counts.values()) == {1}


#: Rounds of start a worker → take a job → stop it, per broker.
STOP_ROUNDS = 20


def test_no_message_is_lost_through_stops_and_starts(
    make_broker: Callable[[], dramatiq.Broker], start_worker: Callable[..., dramatiq.Worker]
) -> None:
    broker = make_broker()
    started = Recorder()
    finish = threading.Event()

    def job(n: int) -> None:
        started.record(n)
        interruptible_wait(finish)  # interrupted by the stop

    declare(broker, job).send(1)
    for round_ in range(STOP_ROUNDS):
        before = started.counts[1]
        worker = start_worker(broker, threads=2)
        wait_until(lambda before=before: started.counts[1] > before, what=f"round {round_} to start the job")
        worker.stop(timeout=10_000)
        assert started.counts[1] == before + 1, f"round {round_}: the stopping worker ran its hand-back"

    finish.set()
    start_worker(broker, threads=2)
    wait_until(lambda: started.counts[1] == STOP_ROUNDS + 1, what="the job to run once more, to its end")
    consumer = make_broker().consume(QUEUE, timeout=50)
    assert takes_nothing(consumer)
    consumer.close()


def test_a_prefetch_limit_caps_what_a_consumer_holds(make_broker: Callable[[], dramatiq.Broker]) -> None:
    broker = make_broker()
    broker.intake.limit_prefetch(QUEUE, 1)
    job = declare(broker, lambda n: None)
    for n in range(3):
        job.send(n)

    # Given a consumer asking for 8 messages under a limit of 1
    greedy = broker.consume(QUEUE, prefetch=8, timeout=50)
    first = take(greedy)

    # Then it takes no second one while it holds the first, and another consumer gets the rest
    assert takes_nothing(greedy)
    other = make_broker().consume(QUEUE, prefetch=8, timeout=50)
    taken = [first.args[0]]
    for _ in range(2):
        message = take(other)
        taken.append(message.args[0])
        other.ack(message)
    assert sorted(taken) == [0, 1, 2]
    greedy.ack(first)
    assert takes_nothing(other)
    greedy.close()
    other.close()


# -- Retries, delays, dead letters ------------------------------------------------------------


def test_a_failing_message_is_retried_until_it_succeeds(
    make_broker: Callable[[], dramatiq.Broker], start_worker: Callable[..., dramatiq.Worker]
) -> None:
    broker = make_broker()
    attempts = Recorder()
    succeeded = threading.Event()

    def flaky(n: int) -> None:
        if attempts.record(n) < 3:
            raise RuntimeError("transient failure")
        succeeded.set()

    declare(broker, flaky).send(7)
    start_worker(broker)
    assert succeeded.wait(15)
    consumer = broker.consume(QUEUE, timeout=50)
    assert takes_nothing(consumer)
    consumer.close()
    assert attempts.counts == {7: 3}
    assert dead_letter_ids(broker) == []


def test_a_delayed_message_runs_after_its_delay_not_before(
    make_broker: Callable[[], dramatiq.Broker], start_worker: Callable[..., dramatiq.Worker]
) -> None:
    broker = make_broker()
    seen = Recorder()
    start_worker(broker)

    message = declare(broker, seen.record).send_with_options(args=(1,), delay=500)
    wait_until(lambda: seen.counts, what="the delayed message")
    assert seen.at[1] >= message.options["eta"]
    assert seen.counts == {1: 1}


def test_a_message_out_of_retries_is_dead_lettered_once(
    make_broker: Callable[[], dramatiq.Broker], start_worker: Callable[..., dramatiq.Worker]
) -> None:
    broker = make_broker()
    attempts = Recorder()

    def broken(n: int) -> None:
        attempts.record(n)
        raise RuntimeError("always fails")

    message_id = declare(broker, broken, max_retries=1).send(1).message_id
    worker = start_worker(broker)
    wait_until(lambda: dead_letter_ids(broker) == [message_id], what="the dead letter")
    worker.stop(timeout=10_000)
    assert attempts.counts == {1: 2}
    consumer = broker.consume(QUEUE, timeout=50)
    assert takes_nothing(consumer)
    consumer.close()
