"""Worker middleware: retries, job status bookkeeping, log context."""

from .job_status import JobStatus
from .log_context import LogContext
from .retries import Retries

__all__ = ["JobStatus", "LogContext", "Retries"]
