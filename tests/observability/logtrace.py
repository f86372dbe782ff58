"""Reading JSON log output (one object per line) and following a request id through it.

Shared by the worker tests here and, later, the end-to-end trace from an HTTP
call: parse whatever a process wrote, then filter by ``requestId``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: The one logger whose lines stay in dramatiq's own format: the ``dramatiq``
#: command's main process never imports preview_actors (see README, "Logs").
DRAMATIQ_MAIN_PROCESS = "[dramatiq.MainProcess]"


def parse_lines(text: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Split output into the JSON objects and the other non-blank lines, in order."""
    records: list[dict[str, Any]] = []
    others: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            others.append(line)
            continue
        if isinstance(value, dict):
            records.append(value)
        else:
            others.append(line)
    return records, others


def with_request(records: Iterable[dict[str, Any]], request_id: str) -> list[dict[str, Any]]:
    """The records that carry ``request_id``."""
    return [record for record in records if record.get("requestId") == request_id]


def with_job(records: Iterable[dict[str, Any]], job_id: str) -> list[dict[str, Any]]:
    """The records that name ``job_id``, as context or in their message."""
    return [record for record in records if record.get("jobId") == job_id or job_id in str(record.get("message", ""))]


def attempt_log_headers(data_dir: Path, job_id: str) -> list[dict[str, Any]]:
    """The JSON header line (``# {…}``) of each render attempt's log, by attempt."""
    headers = []
    for path in sorted((data_dir / "jobs" / job_id / "logs").glob("attempt-*.log")):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        headers.append(json.loads(first.removeprefix("# ")))
    return headers

