"""``jobs/<jobId>/container.json``: what a finished job is, and every file it made."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .storage import StoredArtifact

CONTAINER_FILE = "container.json"
CONTAINER_VERSION = 1
ROLES = ("video", "poster", "plan", "report", "log")


def build_container(
    *,
    job_id: str,
    project_id: str,
    chapter_id: str,
    request_id: str,
    request_sha256: str,
    dry_run: bool,
    renderer: dict[str, Any],
    artifacts: Iterable[tuple[str, StoredArtifact]],
) -> dict[str, Any]:
    """The container document; deterministic for the same inputs, so a rerun rewrites it identically."""
    entries = []
    for role, artifact in artifacts:
        if role not in ROLES:
            raise ValueError(f"unknown artifact role {role!r}")
        entries.append({"role": role, **artifact.to_json()})
    entries.sort(key=lambda entry: ROLES.index(entry["role"]))
    return {
        "containerVersion": CONTAINER_VERSION,
        "jobId": job_id,
        "projectId": project_id,
        "chapterId": chapter_id,
        "requestId": request_id,
        "requestSha256": request_sha256,
        "dryRun": dry_run,
        "renderer": renderer,
        "artifacts": entries,
    }


def write_container(job_dir: Path, container: dict[str, Any]) -> Path:
    """Write atomically (temp file, fsync, rename)."""
    job_dir.mkdir(parents=True, exist_ok=True)
    path = job_dir / CONTAINER_FILE
    temporary = job_dir / f".{CONTAINER_FILE}.tmp"
    with open(temporary, "w", encoding="utf-8") as file:
        json.dump(container, file, indent=2, sort_keys=True)
        file.write("\n")
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    return path


def read_container(job_dir: Path) -> dict[str, Any]:
    with open(job_dir / CONTAINER_FILE, encoding="utf-8") as file:
        container: dict[str, Any] = json.load(file)
    return container
