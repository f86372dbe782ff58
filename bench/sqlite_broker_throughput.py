"""SQLite broker throughput against the ideal, and against the Redis broker.

``--threads`` worker threads running jobs of ``--job-ms`` can do at most
threads / job time jobs per second (8 threads of 50 ms: 160 jobs/s). Each
run queues ``--jobs`` jobs, starts a dramatiq Worker in this process and
times until the last job has run (each job counts itself done). Brokers: the
project's SQLite broker (a fresh file in a temp dir on the same disk as the
repository's /tmp), the project's Redis broker (DB 14, flushed), and
dramatiq's StubBroker for reference. Target: SQLite ≥ 0.9 of the ideal.

    python -m bench sqlite [--jobs 800] [--threads 8] [--job-ms 50] [--runs 3]
    python bench/sqlite_broker_throughput.py   (the same)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python bench/sqlite_broker_throughput.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"

import dramatiq
from dramatiq.brokers.stub import StubBroker

from . import common
from .common import Table

BROKERS = ("sqlite", "redis", "stub")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobs", type=int, default=800)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--job-ms", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--brokers", default=",".join(BROKERS), help=f"comma-separated subset of: {', '.join(BROKERS)}")


def measure(broker: dramatiq.Broker, *, jobs: int, threads: int, job_ms: int) -> float:
    """Seconds from starting a worker on ``jobs`` queued jobs to the last one finishing."""
    done = threading.Semaphore(0)

    @dramatiq.actor(broker=broker, queue_name="bench", actor_name="bench_sleep", max_retries=0)
    def sleep() -> None:
        time.sleep(job_ms / 1000)
        done.release()

    for _ in range(jobs):
        sleep.send()
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=100)
    started = time.monotonic()
    worker.start()
    try:
        for _ in range(jobs):
            if not done.acquire(timeout=60):
                raise TimeoutError("jobs stopped finishing")
        return time.monotonic() - started
    finally:
        worker.stop()
        broker.close()


def make_broker(name: str, directory: Path, run: int) -> dramatiq.Broker:
    if name == "sqlite":
        from preview_actors.brokers.sqlite import SQLiteBroker

        return SQLiteBroker(directory / f"queue-{run}.db")
    if name == "redis":
        from preview_actors.brokers.redis import RedisBroker

        common.flush_redis()
        return RedisBroker(url=common.REDIS_URL)
    return StubBroker()


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("PREVIEW_BROKER_URL", "stub://")  # importing preview_actors: keep its own broker harmless
    brokers = [name.strip() for name in args.brokers.split(",") if name.strip()]
    if "redis" in brokers and not common.server_up("127.0.0.1", 6379):
        print("Redis is not running on 127.0.0.1:6379: leaving it out", file=sys.stderr)
        brokers.remove("redis")
    ideal_rate = args.threads / (args.job_ms / 1000)
    print(common.machine())
    print(f"{args.jobs} jobs of {args.job_ms} ms on {args.threads} threads per run: ideal {ideal_rate:.0f} jobs/s")
    rates: dict[str, list[float]] = {name: [] for name in brokers}
    with tempfile.TemporaryDirectory(prefix="bench-sqlite-") as directory:
        try:
            for run_index, name in common.interleave(brokers, args.runs):
                broker = make_broker(name, Path(directory), run_index)
                elapsed_s = measure(broker, jobs=args.jobs, threads=args.threads, job_ms=args.job_ms)
                rates[name].append(args.jobs / elapsed_s)
                print(f"  run {run_index + 1} {name:<7} {args.jobs / elapsed_s:6.1f} jobs/s ({elapsed_s:.2f} s)", flush=True)
        finally:
            if "redis" in brokers:
                common.flush_redis()
    table = Table("SQLite broker: jobs per second (higher is better)", "jobs/s")
    table.add("ideal", [ideal_rate], note=f"{args.threads} threads / {args.job_ms} ms")
    for name in brokers:
        table.add(name, rates[name], versus=("ideal", "redis") if name == "sqlite" and "redis" in brokers else "ideal")
    table.print()
    if "sqlite" in brokers:
        ratio = table.ratio("sqlite", "ideal")
        common.verdict("sqlite / ideal", ratio, ">= 0.9", ratio >= 0.9)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
