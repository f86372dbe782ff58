"""A render that kills its worker process: the retry limit holds across process deaths.

The OOM killer, or a segfault in a codec, kills the worker process mid-render;
its supervisor starts a new one and the broker delivers the message again.
Attempts are counted in the job store when they start, so after
``PREVIEW_MAX_RETRIES + 1`` of them the next delivery does not render: the
job fails, dead-lettered, and no further worker dies. A replay gives it a
fresh budget.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import REPO, chapter_request, wait_for_state
from workers import WorkerProcess, worker_env

from preview_actors import JobState, submit_preview
from preview_actors.runtime import Runtime

pytestmark = pytest.mark.slow

#: A renderer that SIGKILLs its parent — the worker process that started it — while the flag file exists.
KILLER = """#!/bin/sh
if [ -e "{flag}" ]; then
  kill -KILL "$PPID"
  sleep 30
  exit 1
fi
exec "{python}" -m renderers.mock "$@"
"""


class Supervisor:
    """Starts ``dramatiq preview_actors`` again whenever it exits, as systemd's ``Restart=always`` would.

    Dramatiq's main process does not replace a worker process that died: it
    stops the others and exits with the dead one's code.
    """

    def __init__(self, runtime: Runtime, directory: Path) -> None:
        self.runtime = runtime
        self.directory = directory
        self.exit_codes: list[int] = []
        self.workers: list[WorkerProcess] = []
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._supervise, daemon=True)
        self._thread.start()

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                worker = WorkerProcess(self.runtime, self.directory / f"worker-{len(self.workers)}.log", threads=2)
                self.workers.append(worker)
            while worker.process.poll() is None:
                if self._stopping.wait(0.05):
                    return
            self.exit_codes.append(worker.process.returncode)

    @property
    def current(self) -> WorkerProcess:
        with self._lock:
            return self.workers[-1]

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=30)
        for worker in self.workers:
            worker.close()


def run_cli(runtime: Runtime, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "preview_worker", *args],
        env=worker_env(runtime), cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["rabbitmq", "redis"])
def test_a_render_that_kills_its_worker_is_dead_lettered_after_the_retry_limit(
    kind: str, runtime_factory: Callable[..., Runtime], tmp_path: Path
) -> None:
    # Given a renderer that kills its worker process, PREVIEW_MAX_RETRIES=1, and a supervised worker
    flag = tmp_path / "kill-the-worker"
    flag.touch()
    killer = tmp_path / "killer.sh"
    killer.write_text(KILLER.format(flag=flag, python=sys.executable))
    killer.chmod(0o755)
    runtime = runtime_factory(kind, max_retries=1, renderer=str(killer))
    supervisor = Supervisor(runtime, tmp_path)
    try:
        # When a job is submitted
        job_id = submit_preview(chapter_request()).record.job_id

        # Then two attempts start and kill their worker, and the third delivery renders nothing:
        # the job fails, dead-lettered, and the worker that took it lives on
        record = wait_for_state(runtime, job_id, JobState.FAILED, JobState.SUCCEEDED, timeout_s=150)
        assert record.state is JobState.FAILED
        assert (record.attempts, record.dead_lettered) == (2, True)
        assert record.error is not None and "2 render attempts" in record.error["message"]
        assert len(supervisor.exit_codes) == 2, supervisor.exit_codes
        assert supervisor.current.process.poll() is None

        listed = run_cli(runtime, "dlq", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        assert [json.loads(line)["jobId"] for line in listed.stdout.splitlines()] == [job_id]

        # And once the cause is gone, a replay renders it with a fresh budget, killing no worker
        flag.unlink()
        replayed = run_cli(runtime, "dlq", "replay", job_id)
        assert replayed.stdout.strip() == f"replayed {job_id}", replayed.stderr
        record = wait_for_state(runtime, job_id, JobState.SUCCEEDED, JobState.FAILED, timeout_s=60)
        assert record.state is JobState.SUCCEEDED, record.error
        assert record.attempts == 3
        assert len(supervisor.exit_codes) == 2
        assert "Traceback" not in supervisor.current.output
    finally:
        supervisor.close()
