"""Crash recovery: seconds from SIGKILL of a worker mid-render to the job's success, per broker.

Per broker and run: ``dramatiq preview_actors`` (1 process × 2 threads) starts
with ``PREVIEW_MOCK_HANG=1``; a job (examples/chapter.json) is submitted; once
its renderer is hanging (the attempt's log says so) the worker's whole process
group gets SIGKILL; a second worker starts without the hang, and the clock runs
from the kill to the job's ``succeeded``. That includes the second worker's
boot (printed apart) and the broker handing the dead worker's message on:
RabbitMQ at once (the channel closes), Redis once the dead worker's heartbeat
is stale (15 s) and a maintenance pass runs (every 5 s), SQLite once the
message's lease runs out (15 s). Target: ≤ 30 s each.

Redis uses DB 14 (flushed); RabbitMQ a vhost of its own, ``preview-bench``
(made with ``rabbitmqctl`` when missing, so the benchmark never takes the
messages of tests running on ``/``); SQLite a file in a temp dir.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import common
from .common import ROOT, Child, Table

BROKERS = ("redis", "rabbitmq", "sqlite")
VHOST = "preview-bench"
#: Longest wait for the job's success after the kill, seconds.
GIVE_UP_S = 120


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--brokers", default=",".join(BROKERS), help=f"comma-separated subset of: {', '.join(BROKERS)}")
    parser.add_argument("--chapter", type=Path, default=ROOT / "examples" / "chapter.json")


def rabbitmq_vhost() -> str:
    """The AMQP URL of the benchmark's own vhost, made when missing."""
    listed = subprocess.run(["rabbitmqctl", "-q", "list_vhosts"], capture_output=True, text=True, check=True).stdout.split()
    if VHOST not in listed:
        subprocess.run(["rabbitmqctl", "-q", "add_vhost", VHOST], check=True)
        subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*"], check=True)
    return f"amqp://guest:guest@127.0.0.1:5672/{VHOST}"


def broker_url(kind: str, data_dir: Path) -> str:
    if kind == "redis":
        return common.REDIS_URL
    if kind == "rabbitmq":
        return rabbitmq_vhost()
    return f"sqlite:///{data_dir / 'queue.db'}"


def worker(env: dict[str, str], **extra: str) -> Child:
    child = Child(
        [sys.executable, "-m", "dramatiq", "preview_actors", "--processes", "1", "--threads", "2"],
        env={**env, **extra},
    )
    return child


def one_run(kind: str, work: Path, request: dict, asset_root: Path) -> tuple[float, float]:
    """(seconds from the kill to success, seconds the second worker took to boot)."""
    import preview_actors
    from preview_actors.settings import Settings
    from preview_actors.store import JobState

    data_dir = work / "data"
    env = common.base_env(
        PREVIEW_BROKER_URL=broker_url(kind, data_dir),
        DATA_DIR=str(data_dir),
        PREVIEW_RENDERER="mock",
        PREVIEW_ASSET_ROOT=str(asset_root),
        PREVIEW_LOG_FORMAT="console",
        PREVIEW_METRICS_PORT="0",
    )
    settings = Settings.from_env(env)
    runtime = preview_actors.setup(settings)
    if kind == "redis":
        common.flush_redis()
    elif kind == "rabbitmq":
        runtime.broker.flush_all()
    doomed = rescuer = None
    try:
        doomed = worker(env, PREVIEW_MOCK_HANG="1")
        doomed.wait_for("ready for action", timeout_s=60)
        job_id = preview_actors.submit_preview(request, runtime=runtime).record.job_id
        log = data_dir / "jobs" / job_id / "logs" / "attempt-1.log"
        common.wait_until(lambda: log.is_file() and "hanging as asked" in log.read_text(errors="replace"),
                          timeout_s=60, what="the renderer to hang")  # fmt: skip
        killed_at = time.monotonic()
        doomed.signal_group(9)
        doomed.process.wait(timeout=30)
        rescuer = worker(env)
        booted_at = rescuer.wait_for("ready for action", timeout_s=60)[0]

        def finished() -> bool:
            record = runtime.store.get(job_id)
            return record is not None and record.finished

        common.wait_until(finished, timeout_s=GIVE_UP_S, interval_s=0.05, what="the job to finish after the kill")
        recovered_s = time.monotonic() - killed_at
        record = runtime.store.get(job_id)
        if record is None or record.state is not JobState.SUCCEEDED:
            raise RuntimeError(f"the job ended {record.state if record else 'missing'}: {record.error if record else ''}")
        return recovered_s, booted_at - killed_at
    finally:
        for child in (doomed, rescuer):
            if child is not None:
                child.stop()
        if kind == "rabbitmq":
            runtime.broker.flush_all()
        preview_actors.setup(Settings(broker_url="stub://", store_url="memory://", data_dir=data_dir))  # closes the connections
        if kind == "redis":
            common.flush_redis()


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("PREVIEW_BROKER_URL", "stub://")  # importing preview_actors: harmless until set up
    kinds = [kind.strip() for kind in args.brokers.split(",") if kind.strip()]
    available = {
        "redis": common.server_up("127.0.0.1", 6379),
        "rabbitmq": common.server_up("127.0.0.1", 5672) and bool(shutil.which("rabbitmqctl")),
        "sqlite": True,
    }
    for kind in [kind for kind in kinds if not available.get(kind)]:
        print(f"{kind} is not running here: left out", file=sys.stderr)
        kinds.remove(kind)
    request = json.loads(args.chapter.read_text(encoding="utf-8"))
    print(common.machine())
    print(f"1 job ({args.chapter.name}), worker 1 process x 2 threads, SIGKILL mid-render, then a second worker")
    seconds: dict[str, list[float]] = {kind: [] for kind in kinds}
    boots: dict[str, list[float]] = {kind: [] for kind in kinds}
    for run_index, kind in common.interleave(kinds, args.runs):
        work = Path(tempfile.mkdtemp(prefix=f"bench-recovery-{kind}-"))
        try:
            recovered_s, boot_s = one_run(kind, work, request, args.chapter.parent)
        finally:
            common.rmtree(work)
        seconds[kind].append(recovered_s)
        boots[kind].append(boot_s)
        print(
            f"  run {run_index + 1} {kind:<9} succeeded {recovered_s:5.1f} s after the kill"
            f" (second worker ready after {boot_s:.1f} s)",
            flush=True,
        )
    table = Table("Crash recovery: seconds from SIGKILL to success (lower is better)", "s", higher_is_better=False)
    table.add("target", [30.0], note="the issue's bound")
    for kind in kinds:
        table.add(kind, seconds[kind], versus="target", note=f"second worker booted in {statistics.median(boots[kind]):.1f} s")
    table.print()
    for kind in kinds:
        worst = max(seconds[kind])
        common.verdict(f"{kind}, worst of {len(seconds[kind])} runs, s", worst, "<= 30", worst <= 30)
    return 0
