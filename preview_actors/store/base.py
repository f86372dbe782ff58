"""What a job-status store keeps, and the interface every backend implements."""

from __future__ import annotations

import abc
import enum
import json
import math
import time
from typing import Any

import attrs

from ..errors import PreviewError
from ..render_report import RenderWarning
from ..timestamps import iso_utc


class JobState(str, enum.Enum):
    QUEUED = "queued"
    RENDERING = "rendering"
    HASHING = "hashing"
    FINALIZING = "finalizing"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value


TERMINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})
#: States of a job whose render is done: a render message delivered again starts no attempt.
RENDERED_STATES = frozenset({JobState.HASHING, JobState.FINALIZING})

#: Fields whose values are JSON documents (stored as text by every backend; so is ``warnings``,
#: a JSON list of :class:`~preview_actors.render_report.RenderWarning`).
JSON_FIELDS = ("request", "error", "artifact")


@attrs.frozen
class JobRecord:
    """One job's status, as every backend stores it."""

    job_id: str
    project_id: str
    request_id: str
    content_sha256: str
    #: The normalized request (``JobRequest.to_json()``).
    request: dict[str, Any]
    state: JobState = JobState.QUEUED
    #: 0..1, advancing through the stages.
    progress: float = 0.0
    #: Render attempts started so far.
    attempts: int = 0
    #: ``attempts`` when the current attempt budget began: a replay starts a fresh
    #: budget, and an attempt handed back on a graceful shutdown is not charged to it.
    attempt_base: int = 0
    #: Seconds since the epoch.
    created_at: float = attrs.field(factory=time.time)
    updated_at: float = attrs.field(factory=time.time)
    #: ``{"code", "message", "stage", "retryable", "nextAttemptAt"?}`` or None.
    error: dict[str, Any] | None = None
    #: ``{"video": {sha256, size, contentType, path}, "poster": {…}}`` or None.
    artifact: dict[str, Any] | None = None
    #: What the renderer reported of the render that produced the job's output, from
    #: when that render ended; empty before (a new attempt starts empty).
    warnings: tuple[RenderWarning, ...] = ()
    dead_lettered: bool = False
    #: Whether the first message reached the broker (a submit may fail in between).
    enqueued: bool = False

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL_STATES

    def to_fields(self) -> dict[str, str]:
        """Flatten to strings (a Redis hash, a SQLite row)."""
        fields: dict[str, str] = {}
        for field in attrs.fields(JobRecord):
            value = getattr(self, field.name)
            fields[field.name] = encode_field(field.name, value)
        return fields

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> JobRecord:
        return cls(**{name: decode_field(name, value) for name, value in fields.items() if name in _FIELD_NAMES})

    def to_status(self) -> dict[str, Any]:
        """The camelCase status document of DESIGN.md (URLs are added by the API)."""
        return {
            "jobId": self.job_id,
            "projectId": self.project_id,
            "requestId": self.request_id,
            "state": self.state.value,
            "progress": round(self.progress, 4),
            "attempts": self.attempts,
            "createdAt": iso_utc(self.created_at, milliseconds=True),
            "updatedAt": iso_utc(self.updated_at, milliseconds=True),
            "dryRun": bool(self.request.get("dryRun", False)),
            "deadLettered": self.dead_lettered,
            "error": self.error,
            "warnings": [warning.to_json() for warning in self.warnings],
            "artifact": self.artifact,
        }


_FIELD_NAMES = frozenset(field.name for field in attrs.fields(JobRecord))


#: The encoder of JSON fields (``json.dumps`` with options builds one per call).
_FIELD_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def encode_field(name: str, value: Any) -> str:
    if name in JSON_FIELDS:
        return _FIELD_JSON.encode(value)
    if name == "warnings":
        return _FIELD_JSON.encode([warning.to_json() for warning in value])
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, JobState):
        return value.value
    return str(value)


def decode_field(name: str, value: str) -> Any:
    if name in JSON_FIELDS:
        return json.loads(value)
    if name == "warnings":  # validated when recorded: stored warnings are read as they are
        return tuple(RenderWarning(item["code"], item["message"], item.get("step")) for item in json.loads(value))
    if name in ("dead_lettered", "enqueued"):
        return value == "1"
    if name == "state":
        return JobState(value)
    if name in ("progress", "created_at", "updated_at"):
        return float(value)
    if name in ("attempts", "attempt_base"):
        return int(value)
    return value


class AttemptsExhausted(PreviewError):
    """A job has started every render attempt its budget allows; another would exceed the retry limit.

    Attempts are counted when they start, so an attempt whose worker process
    died (the OOM killer, a crash in a codec) counts too.
    """

    def __init__(self, record: JobRecord, max_attempts: int) -> None:
        self.record = record
        self.max_attempts = max_attempts
        super().__init__(
            f"job {record.job_id} has started {record.attempts - record.attempt_base} render attempts "
            f"(the most allowed: {max_attempts}) without finishing one"
        )


def leaves_unchanged(
    record: JobRecord, *, allow_finished: bool, count_attempt: bool, max_attempts: int | None
) -> bool:
    """Whether :meth:`JobStore.apply_changes` must return ``record`` as it is (the rule every backend
    applies; the Redis store's ``update.lua`` applies the same one in Lua).

    A finished job is left alone unless ``allow_finished``; a new attempt is not counted for a job
    already rendered (:data:`RENDERED_STATES`).

    Raises:
      AttemptsExhausted: when counting an attempt and ``max_attempts`` have started since
        ``attempt_base``.
    """
    if record.finished and not allow_finished:
        return True
    if count_attempt:
        if record.state in RENDERED_STATES:
            return True
        if max_attempts is not None and record.attempts - record.attempt_base >= max_attempts:
            raise AttemptsExhausted(record, max_attempts)
    return False


class JobStore(abc.ABC):
    """Where job statuses live. Every method is safe to call from many threads and processes."""

    @abc.abstractmethod
    def create(self, record: JobRecord, *, max_unfinished: int | None = None) -> tuple[JobRecord, bool]:
        """Insert ``record`` unless its job id exists; return (stored record, created).

        With ``max_unfinished``, refuse (``QueueFullError``) when that many jobs
        are unfinished — checked and inserted atomically.
        """

    @abc.abstractmethod
    def get(self, job_id: str) -> JobRecord | None: ...

    def update(self, job_id: str, *, allow_finished: bool = False, **changes: Any) -> JobRecord | None:
        """Apply ``changes`` (JobRecord field names) and bump ``updated_at``.

        A finished job is left alone unless ``allow_finished`` (replay, cancel):
        a late redelivery must never move a job out of a terminal state.
        Returns the record after the update, or None when the job is unknown.
        """
        return self.apply_changes(job_id, {**changes, "updated_at": time.time()}, allow_finished=allow_finished)

    def begin_attempt(self, job_id: str, *, max_attempts: int | None = None, **changes: Any) -> JobRecord | None:
        """Atomically count a new render attempt and apply ``changes`` — unless the job is finished or rendered.

        Returns the record after (its ``attempts`` is this attempt's number),
        the record untouched when the job is finished or its render is done
        (:data:`RENDERED_STATES`: a copy of a render message delivered late),
        or None for an unknown job: what the render stage needs at its start,
        in one round trip. With ``max_attempts``, raises
        :class:`AttemptsExhausted` (changing nothing) when the job has
        started that many attempts since ``attempt_base``; ``ValueError``
        when ``max_attempts`` is not a positive integer.
        """
        if max_attempts is not None and (isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1):
            raise ValueError(f"max_attempts must be a positive integer, not {max_attempts!r}")
        return self.apply_changes(
            job_id, {**changes, "updated_at": time.time()}, count_attempt=True, max_attempts=max_attempts
        )

    @abc.abstractmethod
    def apply_changes(
        self,
        job_id: str,
        changes: dict[str, Any],
        *,
        allow_finished: bool = False,
        count_attempt: bool = False,
        max_attempts: int | None = None,
    ) -> JobRecord | None:
        """:meth:`update` and :meth:`begin_attempt` in one atomic step (``changes`` has ``updated_at``)."""

    @abc.abstractmethod
    def count_unfinished(self) -> int: ...

    @abc.abstractmethod
    def acquire_lease(self, name: str, owner: str, ttl_s: float) -> bool:
        """Take the lease ``name`` for ``owner`` for ``ttl_s`` seconds; return whether ``owner`` holds it now.

        The lease is taken when it is free or expired, and renewed (its expiry
        moved to ``ttl_s`` from now) when ``owner`` already holds it. Another
        owner's live lease is left alone (False). Atomic across threads and
        processes sharing the store. Raises ``ValueError`` for an empty name or
        owner, or a ``ttl_s`` that is not a positive number of seconds;
        ``BrokerUnavailableError`` when the store cannot be reached.
        """

    @abc.abstractmethod
    def release_lease(self, name: str, owner: str) -> None:
        """Give up the lease ``name`` if ``owner`` holds it; another owner's lease is left alone."""

    @abc.abstractmethod
    def delete(self, job_id: str) -> None: ...

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise ``BrokerUnavailableError`` when the store cannot be reached."""

    def close(self) -> None:  # noqa: B027 - a no-op unless the store holds connections
        """Release connections."""

    @abc.abstractmethod
    def stale_unfinished(self, updated_before: float, *, limit: int) -> list[JobRecord]:
        """Unfinished jobs last updated before ``updated_before`` (seconds since the epoch), oldest first.

        At most ``limit`` records, so memory stays bounded however many jobs
        are waiting (the reconciliation looks at one batch per pass). Raises
        ``ValueError`` for a ``limit`` below 1, ``BrokerUnavailableError``
        when the store cannot be reached.
        """


def check_limit(limit: int) -> None:
    """Refuse (``ValueError``) a batch size that is not a positive integer."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive integer, not {limit!r}")


def check_lease(name: str, owner: str, ttl_s: float | None = None) -> None:
    """Refuse (``ValueError``) lease arguments no backend can store."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"lease name must be a non-empty string, not {name!r}")
    if not isinstance(owner, str) or not owner:
        raise ValueError(f"lease owner must be a non-empty string, not {owner!r}")
    if ttl_s is not None and (
        isinstance(ttl_s, bool) or not isinstance(ttl_s, (int, float)) or not math.isfinite(ttl_s) or ttl_s <= 0
    ):
        raise ValueError(f"lease ttl_s must be a positive number of seconds, not {ttl_s!r}")
