"""Dead letters you can act on: list them, and put them back.

Each broker keeps dead-lettered messages its own way (Redis: a sorted set and
a hash per queue; RabbitMQ: a ``<queue>.XQ`` queue; SQLite: rows in state
'rejected'; stub: a list). :func:`dead_letters` reads them all into one shape;
:func:`replay` puts a job's dead message back on its queue with its retries
reset, its status back to ``queued`` and a fresh render attempt budget
(``attempt_base``: a job dead-lettered for starting too many attempts may
start as many again). Replaying a job that is not in the
dead-letter queue does nothing, so replay is idempotent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import dramatiq
from dramatiq.common import xq_name

from .actors import FINISH_QUEUE, RENDER_QUEUE
from .runtime import Runtime, stage_of
from .store import JobRecord, JobState
from .timestamps import iso_utc

logger = logging.getLogger(__name__)

QUEUES = (RENDER_QUEUE, FINISH_QUEUE)


@attrs.frozen
class DeadLetter:
    job_id: str
    stage: str
    message_id: str
    queue: str
    #: Seconds since the epoch when the message was dead-lettered: the broker's time where it keeps
    #: one (Redis), else when the job was marked dead-lettered in the job store.
    dead_at: float | None
    project_id: str | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "jobId": self.job_id,
            "projectId": self.project_id,
            "stage": self.stage,
            "error": self.error,
            "deadAt": None if self.dead_at is None else iso_utc(self.dead_at),
            "messageId": self.message_id,
            "queue": self.queue,
        }


def dead_letters(runtime: Runtime) -> list[DeadLetter]:
    """Every dead-lettered message of the pipeline, oldest first, with its job's project and error."""
    letters = []
    for queue, message, dead_at in _backend(runtime.broker).browse():
        if stage_of(message.actor_name) is None or not message.args:
            continue
        job_id = str(message.args[0])
        record = runtime.store.get(job_id)
        error = (record.error or {}).get("message") if record else None
        letters.append(
            DeadLetter(
                job_id=job_id,
                stage=stage_of(message.actor_name) or "?",
                message_id=message.message_id,
                queue=queue,
                dead_at=dead_at if dead_at is not None or record is None or not record.dead_lettered else record.updated_at,
                project_id=record.project_id if record else None,
                error=error,
            )
        )
    return sorted(letters, key=lambda letter: letter.dead_at or 0.0)


def replay(runtime: Runtime, job_ids: set[str] | None = None) -> list[str]:
    """Put the dead messages of ``job_ids`` (None: all) back on their queues; return the jobs replayed."""
    replaying = _Replay(runtime, job_ids)
    _backend(runtime.broker).take(replaying)
    return replaying.replayed


#: Message options dropped on replay: the retry count starts again.
_RESET_OPTIONS = frozenset({"retries", "traceback", "eta", "retry_at_ms", "requeue_timestamp"})


@attrs.define
class _Replay:
    """What replaying one dead message means; backends decide how to claim it."""

    runtime: Runtime
    job_ids: set[str] | None
    replayed: list[str] = attrs.Factory(list)

    def wanted(self, message: dramatiq.Message[Any]) -> bool:
        return (
            stage_of(message.actor_name) is not None
            and bool(message.args)
            and (self.job_ids is None or str(message.args[0]) in self.job_ids)
        )

    def message_for(self, message: dramatiq.Message[Any]) -> dramatiq.Message[Any]:
        """The message to queue again: the same, with its retries starting over."""
        return message.copy(options={k: v for k, v in message.options.items() if k not in _RESET_OPTIONS})

    def mark(self, message: dramatiq.Message[Any]) -> JobRecord | None:
        """Set the job back to queued with a fresh attempt budget (before its message is visible);
        return the record as it was.

        Attempts keep their numbers (each has its own folder and log); the
        budget counts those started from here.
        """
        job_id = str(message.args[0])
        before = self.runtime.store.get(job_id)
        fresh_budget = {} if before is None else {"attempt_base": before.attempts}
        self.runtime.store.update(
            job_id, allow_finished=True, state=JobState.QUEUED, dead_lettered=False, error=None, progress=0.0,
            **fresh_budget,
        )  # fmt: skip
        self.replayed.append(job_id)
        logger.info("Replaying the dead %s message of job %s.", stage_of(message.actor_name), job_id)
        return before

    def unmark(self, before: JobRecord | None) -> None:
        """Undo :meth:`mark` when the message turned out to be claimed by another replay."""
        if before is None:
            return
        self.runtime.store.update(
            before.job_id, allow_finished=True, state=before.state, dead_lettered=before.dead_lettered,
            error=before.error, progress=before.progress, attempt_base=before.attempt_base,
        )
        self.replayed.remove(before.job_id)


class _Backend:
    def browse(self) -> Iterator[tuple[str, dramatiq.Message[Any], float | None]]:
        raise NotImplementedError

    def take(self, replay: _Replay) -> None:
        """Queue each wanted dead message again, once even under concurrent replays."""
        raise NotImplementedError


def _backend(broker: dramatiq.Broker) -> _Backend:
    kind = type(broker).__name__
    if kind == "StubBroker":
        return _StubBackend(broker)
    if kind == "SQLiteBroker":
        return _SQLiteBackend(broker)
    if kind == "RedisBroker":
        return _RedisBackend(broker)
    if kind == "RabbitmqBroker":
        return _RabbitmqBackend(broker)
    raise TypeError(f"no dead-letter access for {kind}")


@attrs.define
class _StubBackend(_Backend):
    broker: Any

    def browse(self) -> Iterator[tuple[str, dramatiq.Message[Any], float | None]]:
        for queue in QUEUES:
            for proxy in list(self.broker.dead_letters_by_queue.get(queue, [])):
                yield queue, proxy._message, None

    def take(self, replay: _Replay) -> None:
        for queue in QUEUES:
            letters = self.broker.dead_letters_by_queue.get(queue, [])
            for proxy in list(letters):
                if replay.wanted(proxy._message):
                    letters.remove(proxy)
                    replay.mark(proxy._message)
                    self.broker.enqueue(replay.message_for(proxy._message))


@attrs.define
class _SQLiteBackend(_Backend):
    broker: Any

    def browse(self) -> Iterator[tuple[str, dramatiq.Message[Any], float | None]]:
        for queue in QUEUES:
            for message in self.broker.dead_letters(queue):
                yield queue, message, None

    def take(self, replay: _Replay) -> None:
        for queue in QUEUES:
            for message in self.broker.dead_letters(queue):
                if replay.wanted(message):
                    before = replay.mark(message)
                    if not self.broker.replay_dead_letter(message.message_id, replay.message_for(message)):
                        replay.unmark(before)


@attrs.define
class _RedisBackend(_Backend):
    broker: Any

    def _keys(self, queue: str) -> tuple[str, str]:
        name = f"{self.broker.namespace}:{xq_name(queue)}"
        return name, f"{name}.msgs"

    def browse(self) -> Iterator[tuple[str, dramatiq.Message[Any], float | None]]:
        client = self.broker.client
        for queue in QUEUES:
            ids_key, messages_key = self._keys(queue)
            for message_id, score in client.zrange(ids_key, 0, -1, withscores=True):
                data = client.hget(messages_key, message_id)
                if data is not None:
                    yield queue, dramatiq.Message.decode(data), score / 1000

    def take(self, replay: _Replay) -> None:
        client = self.broker.client
        for queue in QUEUES:
            ids_key, messages_key = self._keys(queue)
            for redis_id in client.zrange(ids_key, 0, -1):
                data = client.hget(messages_key, redis_id)
                if data is None:
                    continue
                message = dramatiq.Message.decode(data)
                if not replay.wanted(message):
                    continue
                # Claim it first, so two replays at once put it back only once.
                if client.zrem(ids_key, redis_id):
                    replay.mark(message)
                    self.broker.enqueue(replay.message_for(message))
                    client.hdel(messages_key, redis_id)


@attrs.define
class _RabbitmqBackend(_Backend):
    broker: Any

    def _drain(self, queue: str, handle: Callable[[Any, Any, bytes], None]) -> None:
        """Get every message of the dead-letter queue unacknowledged, let ``handle`` ack some, requeue the rest."""
        import pika

        parameters = self.broker.parameters
        connection = pika.BlockingConnection(parameters[0] if isinstance(parameters, list) else parameters)
        try:
            channel = connection.channel()
            channel.queue_declare(queue=xq_name(queue), durable=True, passive=True)
            while True:
                method, _properties, body = channel.basic_get(queue=xq_name(queue), auto_ack=False)
                if method is None or body is None:  # the queue is empty (pika gives both or neither)
                    break
                handle(channel, method, body)
            channel.basic_nack(delivery_tag=0, multiple=True, requeue=True)  # the rest go back, in order
        finally:
            connection.close()

    def browse(self) -> Iterator[tuple[str, dramatiq.Message[Any], float | None]]:
        found: list[tuple[str, dramatiq.Message[Any], float | None]] = []
        for queue in QUEUES:

            def collect(channel: Any, method: Any, body: bytes, queue: str = queue) -> None:
                found.append((queue, dramatiq.Message.decode(body), None))

            self._drain(queue, collect)
        yield from found

    def take(self, replay: _Replay) -> None:
        def handle(channel: Any, method: Any, body: bytes) -> None:
            message = dramatiq.Message.decode(body)
            if replay.wanted(message):  # we hold it unacknowledged: no other replay can have it
                replay.mark(message)
                self.broker.enqueue(replay.message_for(message))
                channel.basic_ack(delivery_tag=method.delivery_tag)

        for queue in QUEUES:
            self._drain(queue, handle)
