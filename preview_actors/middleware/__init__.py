"""Worker middleware: retries, job status bookkeeping, metrics, log context, start-up checks."""

from .intake import WorkerIntake
from .job_status import JobStatus
from .log_context import LogContext
from .metrics import Metrics
from .pipelines import Pipelines
from .reconcile import Reconciliation
from .retries import Retries
from .startup_checks import StartupChecks

__all__ = ["JobStatus", "LogContext", "Metrics", "Pipelines", "Reconciliation", "Retries", "StartupChecks", "WorkerIntake"]
