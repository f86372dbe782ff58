"""preview-worker: render video previews of chapters as Dramatiq jobs.

Importing this package sets up the broker named by ``PREVIEW_BROKER_URL`` (see
:mod:`preview_actors.runtime`), which is what ``dramatiq preview_actors`` needs.
"""

import os as _os
import sys as _sys

from .errors import (
    BadInputError,
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
from .request import JobRequest, PreviewRequest, parse_job_request, parse_preview_request
from .runtime import Runtime, current, setup
from .settings import Settings
from .store import JobRecord, JobState, JobStore, open_store

#: Programs whose start is this import: an invalid setting ends them with one line, not a traceback.
_COMMANDS = ("dramatiq", "dramatiq-gevent", "preview-worker", "preview_worker", "uvicorn", "gunicorn")


def _started_by_a_command() -> bool:
    """Whether this process is one of :data:`_COMMANDS` (``python -m dramatiq`` included)."""
    program = _os.path.basename(_sys.argv[0]) if _sys.argv and _sys.argv[0] else ""
    if program == "__main__.py":  # python -m PACKAGE
        program = _os.path.basename(_os.path.dirname(_sys.argv[0]))
    return program in _COMMANDS


try:
    setup()
except ConfigError as _error:
    # Importing this package is how a worker (`dramatiq preview_actors`), the API server and the
    # command line start: there an invalid setting or a missing extra stops the process with one
    # line naming it (exit status 2), not a traceback. A host application importing the library
    # gets the ConfigError itself, as from `setup(settings)`.
    if not _started_by_a_command():
        raise
    print(f"preview-worker: configuration error: {_error}", file=_sys.stderr)
    raise SystemExit(2) from None

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
    "BadInputError",
    "TransientJobError",
    "JobConflictError",
    "JobNotFoundError",
    "QueueFullError",
    "BrokerUnavailableError",
]
