"""The one error hierarchy of preview-worker.

Everything the library raises on purpose derives from :class:`PreviewError`.
Driver errors (redis, pika, sqlite3) are translated at the boundary; HTTP
answers are chosen only at the edge (``preview_api``).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs


class PreviewError(Exception):
    """Base class for every error preview-worker raises on purpose."""


class ConfigError(PreviewError):
    """A setting (environment variable or argument) has an invalid value.

    The message always names the variable.
    """

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable
        self.message = message


@attrs.frozen
class FieldError:
    """One problem with one field of a request, e.g. ``previewRequest.steps[2].durationMs``."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class ValidationError(PreviewError):
    """A job request is invalid. Carries every :class:`FieldError` found."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        if not errors:
            raise ValueError("ValidationError needs at least one FieldError")
        self.errors = tuple(errors)
        super().__init__("; ".join(str(error) for error in self.errors))

    @property
    def field(self) -> str:
        """The first offending field (what a one-field HTTP error body names)."""
        return self.errors[0].field

    @property
    def message(self) -> str:
        return self.errors[0].message


class JobError(PreviewError):
    """A stage of a job failed."""


class PermanentJobError(JobError):
    """A failure that no retry can fix: bad input, a missing or corrupt asset."""


class BadInputError(PermanentJobError):
    """The job's own input is at fault: an asset missing, empty, truncated or
    undecodable, or a spec the renderer refused (it exited 2). The job's
    ``error.code`` is ``bad_input`` and ``preview-worker render`` exits 2.
    The message names the asset by its id and the request's ``uri``."""


class UriError(BadInputError, ValueError):
    """An asset ``uri`` is refused by the URI rules (:mod:`preview_actors.request.uris`).

    ``uri`` is the refused text and ``reason`` says why, without a field path.
    At submit the checks report it as a :class:`FieldError` of the asset's
    ``uri``; at render time (a stored request the rules refuse) it is the
    job's bad input, so it fails at once with ``error.code`` ``bad_input``
    and is never retried. A ``ValueError`` too: the value is at fault.
    """

    def __init__(self, uri: str, reason: str) -> None:
        super().__init__(reason)
        self.uri = uri
        self.reason = reason


class TransientJobError(JobError):
    """A failure worth retrying: the renderer crashed, timed out or was killed."""


class JobCancelled(JobError):
    """The job was cancelled while a stage ran; the message is dropped, not retried."""


class JobConflictError(PreviewError):
    """A jobId was reused with a different request body."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} exists with a different request")
        self.job_id = job_id


class JobNotFoundError(PreviewError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job {job_id}")
        self.job_id = job_id


class QueueFullError(PreviewError):
    """Too many unfinished jobs; the caller should come back later."""

    def __init__(self, unfinished: int, limit: int, retry_after_s: int = 5) -> None:
        super().__init__(f"{unfinished} unfinished jobs (limit {limit})")
        self.unfinished = unfinished
        self.limit = limit
        self.retry_after_s = retry_after_s


class BrokerUnavailableError(PreviewError):
    """The broker or the status store cannot be reached."""
