"""The Redis broker keeps every message it holds through a Redis outage (see preview_actors/brokers/redis.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from queue import PriorityQueue

import pytest
from conftest import wait_until
from dramatiq import Message
from dramatiq.errors import ConnectionClosed
from dramatiq.worker import ConsumerThread
from redis_server import RedisServer

from preview_actors.brokers.redis import RedisBroker

pytestmark = pytest.mark.redis

QUEUE = "q"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path, appendonly=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def broker(server: RedisServer) -> Iterator[RedisBroker]:
    broker = RedisBroker(url=server.url, heartbeat_timeout=60_000)
    broker.declare_queue(QUEUE)
    yield broker
    broker.client.connection_pool.disconnect()  # the broker made the pool: closing the client leaves it open


def _message(n: int) -> Message:
    return Message(queue_name=QUEUE, actor_name="act", args=(n,), kwargs={}, options={})


def _acks(broker: RedisBroker) -> set[bytes]:
    return broker.client.smembers(f"dramatiq:__acks__.{broker.broker_id}.{QUEUE}")


def _restart(server: RedisServer) -> None:
    server.stop()
    server.start()


def test_a_failed_fetch_raises_nothing_and_keeps_the_cache(broker: RedisBroker, server: RedisServer) -> None:
    # Given a consumer holding two messages, with room for a third, and an empty queue
    for n in range(2):
        broker.enqueue(_message(n))
    consumer = broker.consume(QUEUE, prefetch=3, timeout=100)
    held = [next(consumer), next(consumer)]

    # When Redis is down and the consumer wants more
    server.stop()
    assert next(consumer) is None  # no ConnectionClosed: dramatiq would throw the consumer away

    # Then, Redis back, the held messages are still its own to ack
    server.start()
    assert next(consumer) is None
    assert _acks(broker) == {m.options["redis_message_id"].encode() for m in held}
    for message in held:
        consumer.ack(message)
    assert _acks(broker) == set()


def test_messages_fetched_but_never_received_are_given_back(broker: RedisBroker, server: RedisServer) -> None:
    # Given a fetch Redis carried out but whose reply never arrived: ids in this worker's acks set, held nowhere
    broker.enqueue(_message(1))
    consumer = broker.consume(QUEUE, prefetch=1, timeout=100)
    broker.do_fetch(QUEUE, 1)  # the reply is dropped here
    assert len(_acks(broker)) == 1

    # When the consumer meets an outage and Redis comes back
    server.stop()
    assert next(consumer) is None
    server.start()

    # Then it requeues the orphan and receives it
    message = wait_until(lambda: next(consumer), timeout_s=10, what="the orphaned message")
    assert message.args == (1,)
    consumer.ack(message)
    assert _acks(broker) == set()


def test_moving_a_delayed_message_waits_for_redis_in_a_consumer_thread(broker: RedisBroker, server: RedisServer) -> None:
    # Given Redis is down
    server.stop()

    # When a worker's consumer thread moves a due delayed message back to its queue
    outcome: list[object] = []
    thread = ConsumerThread(broker=broker, queue_name=QUEUE, prefetch=1, work_queue=PriorityQueue(), worker_timeout=100)
    thread.running = True
    thread.run = lambda: outcome.append(broker.enqueue(_message(7)))  # type: ignore[method-assign]
    thread.start()

    # Then it waits instead of dying (dramatiq's thread would end on the raw error) …
    wait_until(lambda: thread.is_alive() and not outcome, timeout_s=5, what="the thread to be waiting")
    server.start()
    thread.join(timeout=30)

    # … and the message is on its queue once Redis is back
    assert outcome and not thread.is_alive()
    consumer = broker.consume(QUEUE, prefetch=1, timeout=100)
    message = wait_until(lambda: next(consumer), timeout_s=10, what="the moved message")
    assert message.args == (7,)


def test_a_stopping_consumer_thread_gives_up_with_connection_closed(broker: RedisBroker, server: RedisServer) -> None:
    server.stop()
    errors: list[BaseException] = []

    def move() -> None:
        try:
            broker.enqueue(_message(8))
        except ConnectionClosed as error:
            errors.append(error)

    thread = ConsumerThread(broker=broker, queue_name=QUEUE, prefetch=1, work_queue=PriorityQueue(), worker_timeout=100)
    thread.running = True
    thread.run = move  # type: ignore[method-assign]
    thread.start()
    wait_until(lambda: thread.is_alive(), timeout_s=5, what="the thread to start")
    thread.running = False  # what Worker.stop() does
    thread.join(timeout=30)
    assert not thread.is_alive() and len(errors) == 1


def test_other_threads_get_connection_closed_at_once(broker: RedisBroker, server: RedisServer) -> None:
    # An API submitting a job must answer 503 quickly, not wait for Redis
    server.stop()
    assert not isinstance(threading.current_thread(), ConsumerThread)
    with pytest.raises(ConnectionClosed):
        broker.enqueue(_message(9))


def test_a_delivery_and_its_handed_back_copy_are_held_and_settled_apart(broker: RedisBroker) -> None:
    # Given a consumer holding a delivery and the copy handed back under the same message id
    broker.enqueue(_message(1))
    consumer = broker.consume(QUEUE, prefetch=2, timeout=100)
    first = wait_until(lambda: next(consumer), what="the message")
    broker.enqueue(first)
    copy = wait_until(lambda: next(consumer), what="the copy")
    assert copy.message_id == first.message_id
    assert consumer.outstanding_message_count == 2  # dramatiq counts them by message id: 1

    # When the first is acked, only it is settled: the copy still fills a prefetch slot, and is still held
    consumer.ack(first)
    assert consumer.outstanding_message_count == 1
    assert _acks(broker) == {copy.options["redis_message_id"].encode()}
    consumer.ack(copy)
    assert consumer.outstanding_message_count == 0
    assert _acks(broker) == set()


def test_closing_a_consumer_gives_back_its_prefetched_messages_at_once(broker: RedisBroker, server: RedisServer) -> None:
    # Given a consumer that handed out one message and holds two more in its cache
    for n in range(3):
        broker.enqueue(_message(n))
    consumer = broker.consume(QUEUE, prefetch=3, timeout=100)
    handed_out = wait_until(lambda: next(consumer), what="a message")
    assert len(_acks(broker)) == 3

    # When it closes (its worker stopping)
    consumer.close()

    # Then the two it never handed out are queued again at once, not when its heartbeats stop
    assert _acks(broker) == {handed_out.options["redis_message_id"].encode()}
    other = RedisBroker(url=server.url, heartbeat_timeout=60_000)
    other.declare_queue(QUEUE)
    taker = other.consume(QUEUE, prefetch=3, timeout=100)
    taken = [wait_until(lambda: next(taker), what="a given-back message") for _ in range(2)]
    assert sorted(m.args[0] for m in taken) == sorted({0, 1, 2} - {handed_out.args[0]})
    other.client.connection_pool.disconnect()
