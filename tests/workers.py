"""Worker processes for tests: ``dramatiq preview_actors`` started for real."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from conftest import REPO, wait_until

from preview_actors.runtime import Runtime


def worker_env(runtime: Runtime, **extra: str) -> dict[str, str]:
    settings = runtime.settings
    env = {name: value for name, value in os.environ.items() if not name.startswith("PREVIEW_")}
    env.update(
        PREVIEW_BROKER_URL=settings.broker_url,
        PREVIEW_STORE_URL=settings.store_url,
        DATA_DIR=str(settings.data_dir),
        PREVIEW_RENDERER=settings.renderer,
        PREVIEW_ASSET_ROOT=str(settings.asset_root),
        PREVIEW_MAX_RETRIES=str(settings.max_retries),
        PREVIEW_RETRY_MIN_BACKOFF_MS=str(settings.retry_min_backoff_ms),
        PREVIEW_RETRY_MAX_BACKOFF_MS=str(settings.retry_max_backoff_ms),
        PREVIEW_LOG_FORMAT="console",
        PREVIEW_METRICS_PORT="0",  # tests that scrape a worker choose a free port
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class WorkerProcess:
    """``python -m dramatiq preview_actors`` in its own session, output to a log file."""

    def __init__(
        self,
        runtime: Runtime,
        log_path: Path,
        *,
        threads: int = 2,
        processes: int = 1,
        args: tuple[str, ...] = (),
        **env: str,
    ) -> None:
        self.log_path = log_path
        self.processes = processes
        self._log = open(log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dramatiq", "preview_actors", "--processes", str(processes), "--threads", str(threads), *args],
            env=worker_env(runtime, **env),
            cwd=REPO,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited with {self.process.returncode}:\n{self.output}")
            return self.output.count("ready for action") >= self.processes

        wait_until(ready, timeout_s=timeout_s, what="the worker to boot")

    def terminate(self, timeout_s: float = 60.0) -> int:
        """SIGTERM (graceful shutdown) and wait for the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout_s)

    def kill(self) -> None:
        """SIGKILL the worker's whole process group (the main and its worker processes)."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def close(self) -> None:
        if self.process.poll() is None:
            self.kill()
        self._log.close()


def renderer_pids(job_id: str) -> list[int]:
    """Live renderer processes working on ``job_id`` (found by their command line)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().split(") ")[-1][:1]
        except OSError:
            continue
        if state != "Z" and b"renderers.mock" in cmdline and any(job_id.encode() in part for part in cmdline):
            pids.append(int(entry.name))
    return pids
