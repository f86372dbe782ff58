"""One round trip per submission when broker and store share a Redis (preview_actors/submit_redis.py)."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable

import attrs
import pytest
import redis
from conftest import REDIS_URL, chapter_request, running_worker, wait_for_state

from preview_actors import JobConflictError, JobState, QueueFullError, submit_preview, submit_preview_async
from preview_actors.runtime import Runtime
from preview_actors.submit import _one_trip_submitter, new_record
from preview_actors.submit_redis import OneTripSubmitter

pytestmark = pytest.mark.redis


def unicode_request() -> dict[str, object]:
    body = chapter_request(steps=2)
    steps = body["previewRequest"]["steps"]  # type: ignore[index]
    steps[0]["title"] = "Les détails — ✓ 名前 مرحبا 🎬"
    steps[1]["text"] = 'quotes " and \\ backslashes\nand a new line'
    return body


def test_the_script_stores_exactly_what_the_store_would(runtime_factory: Callable[..., Runtime]) -> None:
    # Given the same record, once created by the store and once by the submit script
    runtime = runtime_factory("redis")
    submitter = _one_trip_submitter(runtime)
    assert isinstance(submitter, OneTripSubmitter)
    by_script = new_record(unicode_request(), request_id="r-1", settings=runtime.settings, enqueued=True)
    by_store = attrs.evolve(by_script, job_id="00000000-0000-4000-8000-000000000001")
    submitter.submit(by_script, max_unfinished=None)
    runtime.store.create(by_store)

    # Then both hashes hold the same fields, byte for byte (Unicode, quotes and all)
    client = runtime.store.client
    scripted = client.hgetall(runtime.store.job_key(by_script.job_id))
    stored = client.hgetall(runtime.store.job_key(by_store.job_id))
    del scripted["job_id"], stored["job_id"]
    assert scripted == stored
    assert runtime.store.get(by_script.job_id) == by_script


def test_one_submission_is_one_round_trip_that_a_worker_runs(
    runtime_factory: Callable[..., Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = runtime_factory("redis")
    submit_preview(chapter_request(steps=1))  # connects and loads the script
    sent: list[object] = []
    for client in {id(c): c for c in (runtime.store.client, runtime.broker.client)}.values():
        original = client.execute_command
        monkeypatch.setattr(
            client, "execute_command", lambda *args, _original=original, **kw: sent.append(args[0]) or _original(*args, **kw)
        )

    submission = submit_preview(chapter_request(steps=2))

    assert sent == ["EVALSHA"]
    assert submission.created and submission.record.enqueued and submission.unfinished == 2
    monkeypatch.undo()
    with running_worker(runtime):
        assert wait_for_state(runtime, submission.record.job_id, JobState.SUCCEEDED, JobState.FAILED).state is JobState.SUCCEEDED


def test_repeats_conflicts_and_a_full_queue(runtime_factory: Callable[..., Runtime]) -> None:
    runtime = runtime_factory("redis", queue_max=2)
    body = chapter_request(steps=1, jobId="00000000-0000-4000-8000-00000000000a")
    first = submit_preview(body)
    again = submit_preview(body)
    assert (first.created, again.created) == (True, False)
    assert again.record == first.record
    assert runtime.broker.do_qsize("preview-render") == 1  # the repeat enqueued nothing
    with pytest.raises(JobConflictError):
        submit_preview({**body, "dryRun": True})
    submit_preview(chapter_request(steps=2))
    with pytest.raises(QueueFullError):
        submit_preview(chapter_request(steps=3))
    assert runtime.store.count_unfinished() == 2


def test_a_job_recorded_but_never_enqueued_is_enqueued_by_its_resubmission(runtime_factory: Callable[..., Runtime]) -> None:
    # Given a record left by a submit whose enqueue failed (the three-call path, store kept, broker down)
    runtime = runtime_factory("redis")
    body = chapter_request(steps=1, jobId="00000000-0000-4000-8000-00000000000b")
    runtime.store.create(new_record(body, request_id="r-2", settings=runtime.settings))

    # When the same body is submitted again
    submission = submit_preview(body)

    # Then the script enqueues it now, and marks it
    assert not submission.created and submission.record.enqueued
    assert runtime.broker.do_qsize("preview-render") == 1


def test_no_one_trip_when_the_store_is_another_database(runtime_factory: Callable[..., Runtime]) -> None:
    runtime = runtime_factory("redis")
    other = runtime_factory("redis", store_url=REDIS_URL.rsplit("/", 1)[0] + "/13")
    assert _one_trip_submitter(runtime) is not None
    assert _one_trip_submitter(other) is None
    submission = submit_preview(chapter_request(steps=1))  # the three-call path still works
    assert submission.created and other.store.get(submission.record.job_id).enqueued
    other.store.client.flushdb()


def test_async_submissions_close_their_client_with_the_loop(runtime_factory: Callable[..., Runtime]) -> None:
    # Given two event loops one after the other, as a test client or a restarted server makes them
    runtime = runtime_factory("redis")
    monitor = redis.Redis.from_url(REDIS_URL)
    baseline = len(monitor.client_list())

    async def submit_three() -> list[bool]:
        return [(await submit_preview_async(chapter_request(steps=n + 1))).created for n in range(3)]

    # When each submits on its own asyncio client
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an unclosed connection would warn (ResourceWarning)
        assert asyncio.run(submit_three()) == [True] * 3
        assert asyncio.run(submit_three()) == [True] * 3

    # Then no connection outlives its loop
    assert len(monitor.client_list()) <= baseline
    assert runtime.store.count_unfinished() == 6
