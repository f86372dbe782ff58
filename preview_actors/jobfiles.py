"""Where a job's files live under ``DATA_DIR/jobs/<jobId>/``."""

from __future__ import annotations

from pathlib import Path

import attrs


@attrs.frozen
class JobFiles:
    data_dir: Path
    job_id: str

    @property
    def root(self) -> Path:
        return self.data_dir / "jobs" / self.job_id

    @property
    def container(self) -> Path:
        return self.root / "container.json"

    def log(self, attempt: int) -> Path:
        """Renderer stdout/stderr of one render attempt."""
        return self.root / "logs" / f"attempt-{attempt}.log"

    @property
    def attempts(self) -> Path:
        return self.root / "attempts"

    def attempt(self, attempt: int) -> Path:
        """Scratch space of one render attempt: spec.json, downloaded assets, the renderer's OUT_DIR."""
        return self.attempts / str(attempt)

    def relative(self, path: Path) -> str:
        return path.relative_to(self.data_dir).as_posix()
