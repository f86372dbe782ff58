"""The limit: a bare dramatiq pipeline of three actors on Redis (``dramatiq bench.pipeline_bare``).

The first actor runs the renderer command of ``BENCH_RENDER_COMMAND`` (a
JSON argv, the same mock renderer the render stage spawns, on the same spec)
into its own output folder and does nothing else; the other two pass the job
on; the last counts it done (one ``INCR``), which is how the benchmark knows
the pipeline finished.
"""

from __future__ import annotations

import json
import os
import subprocess

import dramatiq
from dramatiq.brokers.redis import RedisBroker

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
#: Key counting finished pipelines.
DONE_KEY = "bench:done"

broker = RedisBroker(url=REDIS_URL)
dramatiq.set_broker(broker)
_COMMAND: list[str] = json.loads(os.environ.get("BENCH_RENDER_COMMAND", '["/bin/true"]'))
_OUT_ROOT = os.environ.get("BENCH_OUT_DIR", "/tmp")
#: Printed by each worker process when it starts its first render (the clock starts at the first).
FIRST_LINE = "bench: first render"
_first = True


@dramatiq.actor(queue_name="bench-bare", max_retries=0)
def bare_render(job: int) -> int:
    global _first
    if _first:
        _first = False
        print(FIRST_LINE, flush=True)
    subprocess.run(
        [*_COMMAND, os.path.join(_OUT_ROOT, str(job))],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
        check=True,
    )
    return job


@dramatiq.actor(queue_name="bench-bare", max_retries=0)
def bare_hash(job: int, rendered: int) -> int:
    return job


@dramatiq.actor(queue_name="bench-bare", max_retries=0)
def bare_finalize(job: int, hashed: int) -> None:
    broker.client.incr(DONE_KEY)


def enqueue(jobs: int) -> None:
    """Send ``jobs`` pipelines (from the benchmark process)."""
    for job in range(jobs):
        dramatiq.pipeline(
            [bare_render.message(job), bare_hash.message(job), bare_finalize.message(job)], broker=broker
        ).run()
