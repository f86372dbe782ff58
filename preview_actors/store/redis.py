"""Job statuses in Redis: a hash per job plus a set of unfinished job ids.

Check-and-write steps run as Lua scripts (``*.lua`` beside this module), so a
late redelivery can never move a finished job back, and the queue limit is
checked and applied in one step.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any, Callable, TypeVar

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from ..errors import BrokerUnavailableError, QueueFullError
from .base import JobRecord, JobStore, encode_field

T = TypeVar("T")

_SCRIPTS = Path(__file__).parent

def _translate_errors(method: Callable[..., T]) -> Callable[..., T]:
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


class RedisJobStore(JobStore):
    #: Prefix of every key this store writes.
    namespace = "preview"

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._create = client.register_script((_SCRIPTS / "create.lua").read_text())
        self._update = client.register_script((_SCRIPTS / "update.lua").read_text())
        self._unfinished_key = f"{self.namespace}:unfinished"

    @classmethod
    def from_url(cls, url: str) -> "RedisJobStore":
        client = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=SOCKET_TIMEOUT_S,
            socket_connect_timeout=SOCKET_TIMEOUT_S,
            health_check_interval=30,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), RETRIES),
        )
        return cls(client)

    def _key(self, job_id: str) -> str:
        return f"{self.namespace}:job:{job_id}"

    @_translate_errors
    def create(self, record: JobRecord, *, max_unfinished: int | None = None) -> tuple[JobRecord, bool]:
        args: list[str] = [record.job_id, str(-1 if max_unfinished is None else max_unfinished)]
        for name, value in record.to_fields().items():
            args += [name, value]
        answer = self._create(keys=[self._key(record.job_id), self._unfinished_key], args=args)
        status = int(answer[0])
        if status == 1:
            return record, True
        if status == -1:
            raise QueueFullError(int(answer[1]), int(max_unfinished or 0))
        return JobRecord.from_fields(_to_dict(answer[1:])), False

    @_translate_errors
    def get(self, job_id: str) -> JobRecord | None:
        fields = self.client.hgetall(self._key(job_id))
        return JobRecord.from_fields(fields) if fields else None

    @_translate_errors
    def update(self, job_id: str, *, allow_finished: bool = False, **changes: Any) -> JobRecord | None:
        changes["updated_at"] = time.time()
        args: list[str] = [job_id, "1" if allow_finished else "0"]
        for name, value in changes.items():
            args += [name, encode_field(name, value)]
        answer = self._update(keys=[self._key(job_id), self._unfinished_key], args=args)
        return JobRecord.from_fields(_to_dict(answer)) if answer else None

    @_translate_errors
    def begin_attempt(self, job_id: str) -> int:
        return int(self.client.hincrby(self._key(job_id), "attempts", 1))

    @_translate_errors
    def count_unfinished(self) -> int:
        return int(self.client.scard(self._unfinished_key))

    @_translate_errors
    def delete(self, job_id: str) -> None:
        pipe = self.client.pipeline()
        pipe.delete(self._key(job_id))
        pipe.srem(self._unfinished_key, job_id)
        pipe.execute()

    @_translate_errors
    def ping(self) -> None:
        self.client.ping()

    def close(self) -> None:
        self.client.close()

def _to_dict(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2]))
