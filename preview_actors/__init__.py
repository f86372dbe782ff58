"""preview-worker: render video previews of chapters as Dramatiq jobs.

Importing this package sets up the broker named by ``PREVIEW_BROKER_URL`` (see
:mod:`preview_actors.runtime`), which is what ``dramatiq preview_actors`` needs.
"""

from .errors import (
    BrokerUnavailableError,
    ConfigError,
    FieldError,
    JobConflictError,
    JobError,
    JobNotFoundError,
    PermanentJobError,
    PreviewError,
    QueueFullError,
    TransientJobError,
    ValidationError,
)
from .limits import Limits
from .model import JobRequest, PreviewRequest, parse_job_request, parse_preview_request
from .runtime import Runtime, current, setup
from .settings import Settings
from .store import JobRecord, JobState, JobStore, open_store

setup()

from .actors import finalize, hash_artifacts, render  # noqa: E402  (declared on the broker just set up)
from .submit import Submission, submit_preview, submit_preview_async  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    # Actors and submitting
    "render",
    "hash_artifacts",
    "finalize",
    "submit_preview",
    "submit_preview_async",
    "Submission",
    # Configuration
    "Settings",
    "Limits",
    "Runtime",
    "setup",
    "current",
    # Jobs
    "JobRequest",
    "PreviewRequest",
    "parse_job_request",
    "parse_preview_request",
    "JobRecord",
    "JobState",
    "JobStore",
    "open_store",
    # Errors
    "PreviewError",
    "ConfigError",
    "ValidationError",
    "FieldError",
    "JobError",
    "PermanentJobError",
    "TransientJobError",
    "JobConflictError",
    "JobNotFoundError",
    "QueueFullError",
    "BrokerUnavailableError",
]
