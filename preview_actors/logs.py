"""Log context and formats.

Every stage runs with a context (``requestId``, ``jobId``, ``stage``,
``attempt``) held in a contextvar; :class:`ContextFilter` copies it onto each
record, so any log line written while a stage runs carries it. Logs are one
JSON object per line, or readable console lines with ``PREVIEW_LOG_FORMAT=console``.
:func:`install` also puts :class:`~preview_actors.redaction.RedactingFilter`
on every handler it configures, so no secret reaches a log line.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

from .redaction import RedactingFilter
from .timestamps import iso_utc

#: The fields of the current job, as they appear in log lines.
CONTEXT_FIELDS = ("requestId", "jobId", "stage", "attempt")

#: The current job's fields; read-only, as the default is shared by every context (set a new mapping).
log_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "preview_log_context", default=MappingProxyType({})
)


@contextlib.contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Add ``fields`` to the log context for the duration of the block."""
    token = log_context.set({**log_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        log_context.reset(token)


class ContextFilter(logging.Filter):
    """Copies the current log context onto every record (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in log_context.get().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, context, exception."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": iso_utc(record.created, milliseconds=True),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
            "thread": record.threadName,
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                document[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:  # as RedactingFilter left it
            document["exception"] = record.exc_text
        if record.stack_info:
            document["stack"] = record.stack_info
        return json.dumps(document, ensure_ascii=False, default=str)


class ConsoleFormatter(logging.Formatter):
    """Readable lines with the job context appended as ``key=value``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = " ".join(
            f"{name}={getattr(record, name)}" for name in CONTEXT_FIELDS if getattr(record, name, None) is not None
        )
        return f"{line} [{context}]" if context else line


def formatter_for(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else ConsoleFormatter()


def install(log_format: str, *, logger: logging.Logger | None = None, level: int = logging.INFO) -> None:
    """Put the context and redacting filters and the chosen format on every handler of ``logger`` (default: root).

    Adds a stderr handler when there is none, lowering the logger's level to
    ``level`` if needed. Idempotent. Hosts and the API server call this too,
    so their lines carry the job context and no secret.
    """
    target = logger or logging.getLogger()
    if not target.handlers:
        target.addHandler(logging.StreamHandler())
        if target.level == logging.NOTSET or target.level > level:
            target.setLevel(level)
    for handler in target.handlers:
        if not any(isinstance(f, ContextFilter) for f in handler.filters):
            handler.addFilter(ContextFilter())
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
        handler.setFormatter(formatter_for(log_format))
