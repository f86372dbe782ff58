"""Throughput of the SQLite broker against the ideal, with dramatiq's StubBroker for reference.

8 worker threads running 50 ms jobs can do at most 160 jobs/s; this prints
the fraction of that each broker reaches (the target for SQLite is >= 0.9).

    python bench/sqlite_broker_throughput.py [--jobs 800] [--threads 8] [--job-ms 50]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import dramatiq
from dramatiq.brokers.stub import StubBroker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# Importing preview_actors sets up the broker named by the environment; keep that one harmless.
os.environ["PREVIEW_BROKER_URL"] = "stub://"

from preview_actors.brokers.sqlite import SQLiteBroker  # noqa: E402


def measure(broker: dramatiq.Broker, *, jobs: int, threads: int, job_ms: int) -> float:
    """Seconds from starting a worker on ``jobs`` queued jobs to the queue being empty."""

    @dramatiq.actor(broker=broker, queue_name="bench", actor_name="sleep")
    def sleep() -> None:
        time.sleep(job_ms / 1000)

    for _ in range(jobs):
        sleep.send()
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=100)
    started = time.monotonic()
    worker.start()
    try:
        broker.join("bench")
        if isinstance(broker, StubBroker):
            worker.join()
        return time.monotonic() - started
    finally:
        worker.stop()
        broker.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=800)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--job-ms", type=int, default=50)
    args = parser.parse_args()

    ideal_s = args.jobs * args.job_ms / 1000 / args.threads
    print(f"{args.jobs} jobs of {args.job_ms} ms on {args.threads} threads: ideal {ideal_s:.2f} s")
    with tempfile.TemporaryDirectory() as directory:
        for name, broker in (
            ("stub", StubBroker()),
            ("sqlite", SQLiteBroker(Path(directory) / "queue.db")),
        ):
            elapsed_s = measure(broker, jobs=args.jobs, threads=args.threads, job_ms=args.job_ms)
            rate = args.jobs / elapsed_s
            print(f"{name:>7}: {elapsed_s:.2f} s, {rate:.0f} jobs/s, ratio to ideal {ideal_s / elapsed_s:.3f}")


if __name__ == "__main__":
    main()
