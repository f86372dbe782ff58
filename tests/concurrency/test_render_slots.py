"""Render slots: the cap on renders at once, on lock files and on Redis."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import REDIS_URL, REPO, chapter_request, require_server, wait_for_state, wait_until
from workers import WorkerProcess

from preview_actors import JobState, submit_preview
from preview_actors.concurrency import RenderSlotBusy, RenderSlots
from preview_actors.concurrency.files import FileRenderSlots
from preview_actors.runtime import Runtime


@pytest.fixture(params=["files", "redis"])
def make_slots(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[int], RenderSlots]]:
    if request.param == "files":
        yield lambda limit: FileRenderSlots(tmp_path / "locks", limit)
        return
    require_server("Redis", "127.0.0.1", 6379)
    import redis

    from preview_actors.concurrency.redis import RedisRenderSlots

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield lambda limit: RedisRenderSlots(client, limit, lease_ms=600)
    client.flushdb()


def test_at_most_limit_slots_are_held(make_slots) -> None:
    slots = make_slots(2)
    first, second = slots.try_acquire(), slots.try_acquire()

    assert first is not None and second is not None
    assert slots.try_acquire() is None
    first.release()
    third = slots.try_acquire()
    assert third is not None
    second.release()
    third.release()
    third.release()  # releasing twice is harmless


def test_hold_raises_busy_when_full(make_slots) -> None:
    slots = make_slots(1)
    with slots.hold():
        with pytest.raises(RenderSlotBusy, match="all 1 render slots are taken"):
            with slots.hold():
                pass
    with slots.hold():
        pass


def test_a_held_redis_slot_outlives_its_lease_while_renewed() -> None:
    require_server("Redis", "127.0.0.1", 6379)
    import redis

    from preview_actors.concurrency.redis import RedisRenderSlots

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    slots = RedisRenderSlots(client, 1, lease_ms=300)
    slot = slots.try_acquire()
    # Given three lease lengths have passed (observed through Redis's own clock via the renewals)
    start = client.time()
    def elapsed_ms() -> float:
        now = client.time()
        return (now[0] - start[0]) * 1000 + (now[1] - start[1]) / 1000

    wait_until(lambda: elapsed_ms() > 900, what="three leases")
    # Then the slot is still ours, so another acquire fails
    assert slots.try_acquire() is None
    slot.release()
    assert slots.try_acquire() is not None
    client.flushdb()


@pytest.mark.parametrize("backend", ["files", "redis"])
def test_a_dead_holders_slot_is_freed(backend: str, tmp_path: Path) -> None:
    if backend == "redis":
        require_server("Redis", "127.0.0.1", 6379)
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()
        make = (
            "from preview_actors.concurrency.redis import RedisRenderSlots; import redis; "
            f"slots = RedisRenderSlots(redis.Redis.from_url({REDIS_URL!r}), 1, lease_ms=600)"
        )
    else:
        make = (
            "from preview_actors.concurrency.files import FileRenderSlots; from pathlib import Path; "
            f"slots = FileRenderSlots(Path({str(tmp_path / 'locks')!r}), 1)"
        )
    code = textwrap.dedent(
        f"""
        import sys, time
        {make}
        slot = slots.try_acquire()
        print("held" if slot else "busy", flush=True)
        time.sleep(600)
        """
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert holder.stdout.readline().strip() == "held"
        exec(make, namespace := {})
        slots = namespace["slots"]
        assert slots.try_acquire() is None
        holder.kill()
        holder.wait()
        slot = wait_until(slots.try_acquire, timeout_s=10, what="the dead holder's slot to free")
        slot.release()
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_max_concurrency_one_across_two_worker_processes(kind: str, runtime_factory, tmp_path: Path) -> None:
    # Given PREVIEW_MAX_CONCURRENCY=1 and two worker processes of four threads each
    runtime: Runtime = runtime_factory(kind, max_concurrency=1)
    trace = tmp_path / "renders.trace"
    env = {"PREVIEW_MAX_CONCURRENCY": "1", "PREVIEW_MOCK_DELAY_MS": "200", "PREVIEW_MOCK_TRACE_FILE": str(trace)}
    workers = [WorkerProcess(runtime, tmp_path / f"worker-{n}.log", threads=4, **env) for n in range(2)]
    try:
        for worker in workers:
            worker.wait_ready()
        # When eight jobs are submitted at once
        jobs = [submit_preview(chapter_request(steps=n + 1)).record.job_id for n in range(8)]

        # Then every job succeeds, never having burnt a retry on waiting
        for job_id in jobs:
            record = wait_for_state(runtime, job_id, JobState.SUCCEEDED, JobState.FAILED, timeout_s=120)
            assert record.state is JobState.SUCCEEDED, record.error
            assert record.attempts == 1
    finally:
        for worker in workers:
            worker.close()
    # And the renderers themselves never saw two renders at once
    events = []
    for line in trace.read_text().splitlines():
        event, pid, at = line.split()
        events.append((float(at), 1 if event == "start" else -1, pid))
    assert len(events) == 16
    running = peak = 0
    for _, change, _ in sorted(events):
        running += change
        peak = max(peak, running)
    assert peak == 1
    assert len({pid for _, _, pid in events}) == 8
