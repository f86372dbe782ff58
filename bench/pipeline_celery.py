"""The peer: a Celery chain of three tasks on the same Redis (``celery -A bench.pipeline_celery worker``).

The first task runs the same renderer command as the limit
(``BENCH_RENDER_COMMAND``); the last counts the chain done. No result
backend; each worker prints a line when it is ready.
"""

from __future__ import annotations

import json
import os
import subprocess

from celery import Celery, chain
from celery.signals import worker_ready

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
DONE_KEY = "bench:done"
READY_LINE = "bench celery worker ready"

app = Celery("bench", broker=REDIS_URL)
app.conf.update(
    task_ignore_result=True,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
    worker_send_task_events=False,
)
_COMMAND: list[str] = json.loads(os.environ.get("BENCH_RENDER_COMMAND", '["/bin/true"]'))
_OUT_ROOT = os.environ.get("BENCH_OUT_DIR", "/tmp")
#: Printed by each worker process when it starts its first render (the clock starts at the first).
FIRST_LINE = "bench: first render"
_first = True
_client = None


@worker_ready.connect
def _announce(**_: object) -> None:
    print(READY_LINE, flush=True)


@app.task(name="bench.celery_render")
def celery_render(job: int) -> int:
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


@app.task(name="bench.celery_hash")
def celery_hash(job: int) -> int:
    return job


@app.task(name="bench.celery_finalize")
def celery_finalize(job: int) -> None:
    global _client
    if _client is None:
        import redis

        _client = redis.Redis.from_url(REDIS_URL)
    _client.incr(DONE_KEY)


def enqueue(jobs: int) -> None:
    """Send ``jobs`` chains (from the benchmark process)."""
    with app.connection_for_write() as connection:
        for job in range(jobs):
            chain(celery_render.s(job), celery_hash.s(), celery_finalize.s()).apply_async(connection=connection)
