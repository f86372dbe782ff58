"""Job statuses in Redis: a hash per job plus a set of unfinished job ids.

Check-and-write steps run as Lua scripts (``*.lua`` beside this module), so a
late redelivery can never move a finished job back, and the queue limit is
checked and applied in one step.
"""

from __future__ import annotations

import functools
import heapq
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar, cast

import redis
import redis.asyncio.retry
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from ..errors import BrokerUnavailableError, QueueFullError
from .base import AttemptsExhausted, JobRecord, JobStore, check_lease, check_limit, encode_field

T = TypeVar("T")

_SCRIPTS = Path(__file__).parent

def translate_errors(method: Callable[..., T]) -> Callable[..., T]:
    """Raise ``BrokerUnavailableError`` where redis-py says the server is away."""
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return method(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as error:
            raise BrokerUnavailableError(f"job store (redis) unreachable: {error}") from None

    return wrapper

#: Seconds a store call waits on the socket; a hung Redis fails fast rather than blocking submits.
SOCKET_TIMEOUT_S = 2.0
#: Retries of a failed call (a reconnect after Redis restarted), with a short backoff.
RETRIES = 2


def client_options(*, for_asyncio: bool = False) -> dict[str, Any]:
    """How the job store talks to Redis: decoded answers, bounded waits, a couple of quick retries."""
    retry_class = redis.asyncio.retry.Retry if for_asyncio else Retry
    return {
        "decode_responses": True,
        "socket_timeout": SOCKET_TIMEOUT_S,
        "socket_connect_timeout": SOCKET_TIMEOUT_S,
        "health_check_interval": 30,
        "retry": retry_class(ExponentialBackoff(cap=0.5, base=0.05), RETRIES),
    }


class RedisJobStore(JobStore):
    #: Prefix of every key this store writes.
    namespace = "preview"

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._create = client.register_script(self.script_source("create"))
        self._update = client.register_script(self.script_source("update"))
        self._lease_acquire = client.register_script(self.script_source("lease_acquire"))
        self._lease_release = client.register_script(self.script_source("lease_release"))
        self._unfinished_key = f"{self.namespace}:unfinished"

    @classmethod
    def from_url(cls, url: str) -> RedisJobStore:
        client = redis.Redis.from_url(url, **client_options())
        return cls(client)

    @staticmethod
    def script_source(name: str) -> str:
        """The Lua script ``name``.lua kept beside this module."""
        return (_SCRIPTS / f"{name}.lua").read_text()

    def job_key(self, job_id: str) -> str:
        """The hash holding ``job_id``'s fields."""
        return f"{self.namespace}:job:{job_id}"

    @property
    def unfinished_key(self) -> str:
        """The set of unfinished job ids (the queue limit counts it)."""
        return self._unfinished_key

    @translate_errors
    def create(self, record: JobRecord, *, max_unfinished: int | None = None) -> tuple[JobRecord, bool]:
        keys, args = self.create_call(record, max_unfinished)
        stored, created, _ = self.create_outcome(self._create(keys=keys, args=args), record, max_unfinished)
        return stored, created

    def create_call(
        self, record: JobRecord, max_unfinished: int | None, enqueue: tuple[str, str, str, bytes] | None = None
    ) -> tuple[list[str], list[Any]]:
        """Keys and arguments of ``create.lua`` for ``record``.

        With ``enqueue`` — (the queue's id list key, its message hash key, the
        message's redis id, the encoded message) — the script also enqueues it.
        """
        keys = [self.job_key(record.job_id), self._unfinished_key]
        args: list[Any] = [
            record.job_id,
            str(-1 if max_unfinished is None else max_unfinished),
            record.content_sha256,
            json.dumps(record.to_fields(), ensure_ascii=False),
        ]
        if enqueue is not None:
            queue_ids, queue_data, message_id, data = enqueue
            keys += [queue_ids, queue_data]
            args += [message_id, data]
        return keys, args

    @staticmethod
    def create_outcome(
        answer: list[Any], record: JobRecord, max_unfinished: int | None
    ) -> tuple[JobRecord, bool, int | None]:
        """(stored record, created, unfinished jobs when known) from ``create.lua``'s answer."""
        status = int(answer[0])
        if status == -1:
            raise QueueFullError(int(answer[1]), int(max_unfinished or 0))
        if status == 1:
            return record, True, int(answer[1])
        if status == 2:  # existed, never enqueued; enqueued now
            return JobRecord.from_fields(_to_dict(answer[2:])), False, int(answer[1])
        return JobRecord.from_fields(_to_dict(answer[1:])), False, None

    @translate_errors
    def get(self, job_id: str) -> JobRecord | None:
        # The client decodes responses (client_options): keys and values are str.
        fields = cast("dict[str, str]", self.client.hgetall(self.job_key(job_id)))
        return JobRecord.from_fields(fields) if fields else None

    @translate_errors
    def apply_changes(
        self,
        job_id: str,
        changes: dict[str, Any],
        *,
        allow_finished: bool = False,
        count_attempt: bool = False,
        max_attempts: int | None = None,
    ) -> JobRecord | None:
        args: list[str] = [
            job_id,
            "1" if allow_finished else "0",
            "1" if count_attempt else "0",
            str(-1 if max_attempts is None else max_attempts),
        ]
        for name, value in changes.items():
            args += [name, encode_field(name, value)]
        answer = self._update(keys=[self.job_key(job_id), self._unfinished_key], args=args)
        if not answer:
            return None
        record = JobRecord.from_fields(_to_dict(answer[1:]))
        if answer[0] == "exhausted":
            raise AttemptsExhausted(record, int(max_attempts or 0))
        return record

    @translate_errors
    def count_unfinished(self) -> int:
        return int(self.client.scard(self._unfinished_key))

    def lease_key(self, name: str) -> str:
        """The string holding lease ``name``'s owner, expiring with the lease."""
        return f"{self.namespace}:lease:{name}"

    @translate_errors
    def acquire_lease(self, name: str, owner: str, ttl_s: float) -> bool:
        check_lease(name, owner, ttl_s)
        ttl_ms = max(1, math.ceil(ttl_s * 1000))
        return bool(self._lease_acquire(keys=[self.lease_key(name)], args=[owner, ttl_ms]))

    @translate_errors
    def release_lease(self, name: str, owner: str) -> None:
        check_lease(name, owner)
        self._lease_release(keys=[self.lease_key(name)], args=[owner])

    @translate_errors
    def delete(self, job_id: str) -> None:
        pipe = self.client.pipeline()
        pipe.delete(self.job_key(job_id))
        pipe.srem(self._unfinished_key, job_id)
        pipe.execute()

    @translate_errors
    def ping(self) -> None:
        self.client.ping()

    def close(self) -> None:
        self.client.close()

    @translate_errors
    def stale_unfinished(self, updated_before: float, *, limit: int) -> list[JobRecord]:
        """Walks the unfinished set in batches (SSCAN), keeping only the ``limit`` oldest ids in memory."""
        check_limit(limit)
        oldest: list[tuple[float, str]] = []  # a heap of (-updated_at, job id): the newest kept on top
        for job_ids in _batches(self.client.sscan_iter(self._unfinished_key, count=STALE_SCAN_BATCH), STALE_SCAN_BATCH):
            pipe = self.client.pipeline(transaction=False)
            for job_id in job_ids:
                pipe.hget(self.job_key(job_id), "updated_at")
            for job_id, updated_at in zip(job_ids, pipe.execute(), strict=True):
                if updated_at is None or float(updated_at) >= updated_before:
                    continue
                entry = (-float(updated_at), job_id)
                if len(oldest) < limit:
                    heapq.heappush(oldest, entry)
                elif entry > oldest[0]:
                    heapq.heapreplace(oldest, entry)
        pipe = self.client.pipeline(transaction=False)
        for _, job_id in sorted(oldest, reverse=True):
            pipe.hgetall(self.job_key(job_id))
        records = [JobRecord.from_fields(fields) for fields in pipe.execute() if fields]
        return [record for record in records if not record.finished and record.updated_at < updated_before]

def _to_dict(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


#: Job ids read per SSCAN step and per pipelined batch of reads, in :meth:`RedisJobStore.stale_unfinished`.
STALE_SCAN_BATCH = 500


def _batches(items: Iterator[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
