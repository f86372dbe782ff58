"""Reconciliation: an unfinished job whose message is gone is re-enqueued (or failed, naming why).

Each case loses a job's message the way it happens in production — taken and
acknowledged without being run, deleted by hand, evicted by Redis — and runs
a pass (:class:`preview_actors.reconcile.Reconciler`), then a worker.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from conftest import chapter_request, running_worker, wait_for_state, wait_until
from prometheus_client import REGISTRY
from workers import worker_env

from preview_actors import stages
from preview_actors.errors import ConfigError
from preview_actors.reconcile import LEASE_NAME, Reconciler
from preview_actors.runtime import Runtime
from preview_actors.settings import Settings
from preview_actors.store import JobRecord, JobState, JobStore, open_store
from preview_actors.submit import submit_preview

#: Brokers that can show every message they hold (RabbitMQ cannot; see its own tests below).
COMPLETE = ["stub", "sqlite", "redis"]
RENDER_QUEUE = "preview-render"
GRACE_S = 60.0
UNKNOWN_AFTER_S = 3_600.0


@pytest.fixture(params=COMPLETE)
def runtime(request: pytest.FixtureRequest, runtime_factory: Callable[..., Runtime]) -> Runtime:
    return make(runtime_factory, str(request.param))


def make(runtime_factory: Callable[..., Runtime], kind: str, **overrides: object) -> Runtime:
    options: dict[str, object] = {
        "reconcile_grace_s": GRACE_S,
        "reconcile_interval_s": 0.0,  # passes are run by the tests
        "reconcile_unknown_after_s": UNKNOWN_AFTER_S,
    }
    return runtime_factory(kind, **{**options, **overrides})


def submit(runtime: Runtime) -> str:
    return submit_preview(chapter_request(), runtime=runtime).record.job_id


def age(runtime: Runtime, job_id: str, seconds: float) -> JobRecord:
    """Make the job's record look ``seconds`` old (its last status change)."""
    record = runtime.store.apply_changes(job_id, {"updated_at": time.time() - seconds})
    assert record is not None
    return record


def reconcile(runtime: Runtime, **options: Any) -> Any:
    return Reconciler(runtime.broker, runtime.store, runtime.settings, **options).run_once()


def reconciled(action: str) -> float:
    return REGISTRY.get_sample_value("preview_jobs_reconciled_total", {"action": action}) or 0.0


def take(runtime: Runtime, queue: str = RENDER_QUEUE) -> tuple[Any, dramatiq.MessageProxy]:
    """Take the next message of ``queue`` as a worker would (and hold it)."""
    consumer = runtime.broker.consume(queue, prefetch=1, timeout=100)
    message = wait_until(lambda: next(consumer), timeout_s=10, what=f"a message on {queue}")
    return consumer, message


def lose(runtime: Runtime) -> None:
    """Take the render message and acknowledge it without running it: gone from every queue."""
    consumer, message = take(runtime)
    consumer.ack(message)
    consumer.close()


def dead_letter(runtime: Runtime) -> None:
    consumer, message = take(runtime)
    consumer.nack(message)
    consumer.close()


def messages_of(runtime: Runtime, job_id: str) -> list[str]:
    """The actor names of the job's messages anywhere in the broker (read here independently of the code under test)."""
    broker = runtime.broker
    bodies: list[Any] = []
    kind = runtime.settings.broker_url.partition("://")[0]
    if kind == "stub":
        for queue in broker.queues.values():
            bodies += list(queue.queue)
        bodies += [proxy._message.encode() for letters in broker.dead_letters_by_queue.values() for proxy in letters]
    elif kind == "sqlite":
        with sqlite3.connect(broker.path) as connection:
            bodies += [row[0] for row in connection.execute("SELECT message FROM dramatiq_messages")]
    else:
        for key in broker.client.keys(f"{broker.namespace}:*.msgs"):
            bodies += broker.client.hvals(key)
    names = []
    for body in bodies:
        message = dramatiq.Message.decode(body.encode() if isinstance(body, str) else body)
        if message.args and message.args[0] == job_id:
            names.append(message.actor_name)
    return sorted(names)


# --- the examples of the issue ---------------------------------------------------


def test_a_job_whose_message_is_gone_is_requeued_and_then_succeeds(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a queued job whose message was taken and acknowledged, never run, long ago
    job_id = submit(runtime)
    lose(runtime)
    assert messages_of(runtime, job_id) == []
    age(runtime, job_id, GRACE_S * 2)
    before = reconciled("requeued")

    # When a pass runs
    caplog.set_level(logging.WARNING, logger="preview_actors.reconcile")
    outcome = reconcile(runtime)

    # Then the job has a fresh render pipeline, is counted and logged by id
    assert outcome.ran and outcome.requeued == (job_id,) and outcome.failed == ()
    assert messages_of(runtime, job_id) == ["preview_render"]
    assert reconciled("requeued") == before + 1
    assert any(job_id in record.getMessage() and record.jobId == job_id for record in caplog.records)  # type: ignore[attr-defined]
    record = runtime.store.get(job_id)
    assert record is not None and record.state is JobState.QUEUED and record.enqueued
    # And a worker renders it to success, once
    with running_worker(runtime):
        done = wait_for_state(runtime, job_id, JobState.SUCCEEDED, JobState.FAILED)
    assert done.state is JobState.SUCCEEDED, done.error
    assert done.attempts == 1


def test_a_job_with_its_message_is_untouched(runtime: Runtime) -> None:
    job_id = submit(runtime)
    age(runtime, job_id, GRACE_S * 2)

    outcome = reconcile(runtime)

    assert outcome.present == (job_id,) and outcome.requeued == ()
    assert messages_of(runtime, job_id) == ["preview_render"]


def test_a_job_whose_message_a_worker_holds_is_untouched(runtime: Runtime) -> None:
    # Given a job whose message a (frozen or busy) worker has taken and not acknowledged
    job_id = submit(runtime)
    consumer, message = take(runtime)
    age(runtime, job_id, GRACE_S * 2)

    outcome = reconcile(runtime)

    # Then nothing is done: the broker gives it back if that worker dies
    assert outcome.requeued == () and outcome.failed == ()
    assert job_id in outcome.present + outcome.unknown  # the stub cannot see what a consumer holds
    assert message.args[0] == job_id
    consumer.close()


def test_a_job_within_the_grace_period_is_untouched(runtime: Runtime) -> None:
    # Given a job whose message is gone, but whose record changed within the grace period
    job_id = submit(runtime)
    lose(runtime)
    age(runtime, job_id, GRACE_S / 2)

    outcome = reconcile(runtime)

    assert outcome.ran and outcome.checked == 0 and outcome.requeued == ()
    assert messages_of(runtime, job_id) == []


def test_a_job_whose_message_is_dead_lettered_is_untouched(runtime: Runtime) -> None:
    job_id = submit(runtime)
    dead_letter(runtime)
    age(runtime, job_id, GRACE_S * 2)

    outcome = reconcile(runtime)

    assert outcome.present == (job_id,) and outcome.requeued == ()
    assert messages_of(runtime, job_id) == ["preview_render"]  # the dead letter, alone


def test_two_passes_at_once_act_once(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a job whose message is gone, and a first pass held up just after it took the lease
    job_id = submit(runtime)
    lose(runtime)
    age(runtime, job_id, GRACE_S * 2)
    entered, release = threading.Event(), threading.Event()
    stale_unfinished = runtime.store.stale_unfinished

    def held(updated_before: float, *, limit: int) -> list[JobRecord]:
        if threading.current_thread().name == "first-pass":
            entered.set()
            release.wait(10)
        return stale_unfinished(updated_before, limit=limit)

    monkeypatch.setattr(runtime.store, "stale_unfinished", held)
    outcomes: list[Any] = []
    first = threading.Thread(target=lambda: outcomes.append(reconcile(runtime, owner="worker-1")), name="first-pass")
    first.start()
    assert entered.wait(10), "the first pass never looked for stale jobs"

    # When a second worker's pass runs meanwhile
    second = reconcile(runtime, owner="worker-2")
    release.set()
    first.join(10)

    # Then only the first acted: one new message
    assert not second.ran
    assert outcomes and outcomes[0].requeued == (job_id,)
    assert messages_of(runtime, job_id) == ["preview_render"]
    # And a later pass finds the job changed (within the grace period again)
    assert reconcile(runtime, owner="worker-2").checked == 0


# --- stages, failures, brokers ------------------------------------------------------


def test_a_job_whose_render_finished_resumes_at_hash(runtime_factory: Callable[..., Runtime]) -> None:
    # Given a job rendered (its output on disk) whose hash message is gone
    runtime = make(runtime_factory, "sqlite")
    job_id = submit(runtime)
    lose(runtime)
    stages.render(runtime, job_id)
    runtime.store.update(job_id, state=JobState.HASHING, progress=stages.PROGRESS_HASH_START)
    age(runtime, job_id, GRACE_S * 2)

    outcome = reconcile(runtime)

    # Then it goes on from hash; nothing is rendered again
    assert outcome.requeued == (job_id,)
    assert messages_of(runtime, job_id) == ["preview_hash"]
    with running_worker(runtime):
        done = wait_for_state(runtime, job_id, JobState.SUCCEEDED, JobState.FAILED)
    assert done.state is JobState.SUCCEEDED, done.error
    assert done.attempts == 1


def test_a_job_past_render_without_its_output_renders_again(runtime_factory: Callable[..., Runtime]) -> None:
    runtime = make(runtime_factory, "stub")
    job_id = submit(runtime)
    lose(runtime)
    runtime.store.update(job_id, state=JobState.FINALIZING, attempts=1)
    age(runtime, job_id, GRACE_S * 2)

    assert reconcile(runtime).requeued == (job_id,)
    assert messages_of(runtime, job_id) == ["preview_render"]
    with running_worker(runtime):
        done = wait_for_state(runtime, job_id, JobState.SUCCEEDED, JobState.FAILED)
    assert done.state is JobState.SUCCEEDED, done.error


def test_a_job_that_cannot_be_re_enqueued_is_failed_naming_why(
    runtime_factory: Callable[..., Runtime], caplog: pytest.LogCaptureFixture
) -> None:
    # Given a job whose message is gone and whose stored request no longer makes a render
    runtime = make(runtime_factory, "stub")
    record = JobRecord(job_id="job-broken", project_id="p", request_id="r", content_sha256="0" * 64, request={"jobId": 1})
    runtime.store.create(record)
    age(runtime, record.job_id, GRACE_S * 2)
    before = reconciled("failed")
    caplog.set_level(logging.ERROR, logger="preview_actors.reconcile")

    outcome = reconcile(runtime)

    assert outcome.failed == ("job-broken",)
    failed = runtime.store.get("job-broken")
    assert failed is not None and failed.state is JobState.FAILED
    assert failed.error is not None and failed.error["code"] == "message_lost"
    assert "cannot be rendered again" in failed.error["message"] and "projectId" in failed.error["message"]
    assert reconciled("failed") == before + 1
    assert any("job-broken" in r.getMessage() for r in caplog.records)
    assert messages_of(runtime, "job-broken") == []


def test_a_job_never_enqueued_is_enqueued(runtime: Runtime) -> None:
    # Given a record a submit wrote but could not enqueue (the broker was away, then the submitter died)
    record = JobRecord(
        job_id="job-unsent", project_id="project-1", request_id="r", content_sha256="0" * 64,
        request={**chapter_request(), "jobId": "job-unsent", "requestId": "r"},
    )
    runtime.store.create(record)
    age(runtime, record.job_id, GRACE_S * 2)

    assert reconcile(runtime).requeued == ("job-unsent",)
    with running_worker(runtime):
        done = wait_for_state(runtime, "job-unsent", JobState.SUCCEEDED, JobState.FAILED)
    assert done.state is JobState.SUCCEEDED, done.error


def test_a_message_deleted_by_hand_from_sqlite(runtime_factory: Callable[..., Runtime]) -> None:
    runtime = make(runtime_factory, "sqlite")
    job_id = submit(runtime)
    with sqlite3.connect(runtime.broker.path) as connection:
        assert connection.execute("DELETE FROM dramatiq_messages").rowcount == 1
    age(runtime, job_id, GRACE_S * 2)

    assert reconcile(runtime).requeued == (job_id,)
    with running_worker(runtime):
        assert wait_for_state(runtime, job_id, JobState.SUCCEEDED, JobState.FAILED).state is JobState.SUCCEEDED


def test_messages_evicted_by_redis(runtime_factory: Callable[..., Runtime]) -> None:
    # Given Redis evicted the render queue's message hash (an eviction policy drops whole keys)
    runtime = make(runtime_factory, "redis")
    job_id = submit(runtime)
    assert runtime.broker.client.delete(f"{runtime.broker.namespace}:{RENDER_QUEUE}.msgs") == 1
    age(runtime, job_id, GRACE_S * 2)

    assert reconcile(runtime).requeued == (job_id,)
    with running_worker(runtime):
        done = wait_for_state(runtime, job_id, JobState.SUCCEEDED, JobState.FAILED)
    assert done.state is JobState.SUCCEEDED, done.error
    assert done.attempts == 1


def test_rabbitmq_jobs_are_unknown_until_unchanged_for_unknown_after(runtime_factory: Callable[..., Runtime]) -> None:
    # Given a RabbitMQ job older than the grace period: its message cannot be seen, so nothing is done
    runtime = make(runtime_factory, "rabbitmq")
    job_id = submit(runtime)
    runtime.broker.flush(RENDER_QUEUE)  # an operator purged the queue
    age(runtime, job_id, GRACE_S * 2)
    outcome = reconcile(runtime)
    assert outcome.unknown == (job_id,) and outcome.requeued == ()

    # When its record has not changed for PREVIEW_RECONCILE_UNKNOWN_AFTER_S
    age(runtime, job_id, UNKNOWN_AFTER_S * 2)
    outcome = reconcile(runtime)

    # Then it is re-enqueued, and succeeds
    assert outcome.requeued == (job_id,)
    with running_worker(runtime):
        done = wait_for_state(runtime, job_id, JobState.SUCCEEDED, JobState.FAILED)
    assert done.state is JobState.SUCCEEDED, done.error


def test_rabbitmq_unknown_jobs_are_never_touched_when_disabled(runtime_factory: Callable[..., Runtime]) -> None:
    runtime = make(runtime_factory, "rabbitmq", reconcile_unknown_after_s=0.0)
    job_id = submit(runtime)
    runtime.broker.flush(RENDER_QUEUE)
    age(runtime, job_id, 10 * 86_400)

    outcome = reconcile(runtime)

    assert outcome.unknown == (job_id,) and outcome.requeued == ()


def test_a_pass_is_skipped_while_another_process_holds_the_lease(runtime: Runtime) -> None:
    job_id = submit(runtime)
    lose(runtime)
    age(runtime, job_id, GRACE_S * 2)
    assert runtime.store.acquire_lease(LEASE_NAME, "another-host:1:x", 60)

    assert not reconcile(runtime).ran
    assert messages_of(runtime, job_id) == []

    runtime.store.release_lease(LEASE_NAME, "another-host:1:x")
    assert reconcile(runtime).requeued == (job_id,)


# --- how workers and operators run it ------------------------------------------------


def test_workers_reconcile_periodically(runtime_factory: Callable[..., Runtime]) -> None:
    # Given a worker whose reconciliation runs every 0.2 s, and a job whose message is gone
    runtime = make(runtime_factory, "sqlite", reconcile_interval_s=0.2)
    job_id = submit(runtime)
    lose(runtime)
    age(runtime, job_id, GRACE_S * 2)

    # Then the worker finds it, re-enqueues it and renders it
    with running_worker(runtime):
        done = wait_for_state(runtime, job_id, JobState.SUCCEEDED, JobState.FAILED)
        assert any(thread.name == "preview-reconcile" for thread in threading.enumerate())
    assert done.state is JobState.SUCCEEDED, done.error
    # And the thread stops with the worker
    wait_until(
        lambda: not any(t.name == "preview-reconcile" for t in threading.enumerate()), timeout_s=10, what="the thread to stop"
    )


def test_cli_runs_one_pass(runtime_factory: Callable[..., Runtime]) -> None:
    runtime = make(runtime_factory, "sqlite")
    job_id = submit(runtime)
    lose(runtime)
    age(runtime, job_id, GRACE_S * 2)
    env = worker_env(runtime, PREVIEW_RECONCILE_GRACE_S=str(GRACE_S))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "preview_worker", "reconcile", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)

    result = run("--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "ran": True, "checked": 1, "present": [], "unknown": [], "requeued": [job_id], "failed": [],
    }
    assert job_id in result.stderr  # the log line naming the job
    assert messages_of(runtime, job_id) == ["preview_render"]

    age(runtime, job_id, GRACE_S * 2)
    result = run()
    assert result.returncode == 0, result.stderr
    assert "1 unfinished jobs unchanged for 60s: 0 requeued, 0 failed, 1 with their message" in result.stdout


# --- the store query and the settings ------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobStore]:
    from conftest import REDIS_URL, require_server

    if request.param == "redis":
        require_server("Redis", "127.0.0.1", 6379)
        url = REDIS_URL
    else:
        url = {"memory": "memory://", "sqlite": f"sqlite:///{tmp_path / 'jobs.db'}"}[request.param]
    opened = open_store(url)
    client = getattr(opened, "client", None)
    if client is not None:
        client.flushdb()
    yield opened
    if client is not None:
        client.flushdb()
    opened.close()


def test_stale_unfinished_lists_the_oldest_unfinished_jobs_first(store: JobStore) -> None:
    now = time.time()
    ages_and_states = [(50, "queued"), (500, "rendering"), (5000, "retrying"), (9000, "succeeded"), (5, "queued")]
    for n, (seconds_ago, state) in enumerate(ages_and_states):
        job_id = f"job-{n}"
        store.create(JobRecord(job_id=job_id, project_id="p", request_id="r", content_sha256="0", request={}))
        store.apply_changes(job_id, {"state": JobState(state), "updated_at": now - seconds_ago})

    assert [r.job_id for r in store.stale_unfinished(now - 10, limit=10)] == ["job-2", "job-1", "job-0"]
    assert [r.job_id for r in store.stale_unfinished(now - 10, limit=2)] == ["job-2", "job-1"]
    assert store.stale_unfinished(now - 6000, limit=10) == []
    with pytest.raises(ValueError, match="limit"):
        store.stale_unfinished(now, limit=0)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PREVIEW_RECONCILE_GRACE_S", "0", "at least 1"),
        ("PREVIEW_RECONCILE_GRACE_S", "soon", "must be a number"),
        ("PREVIEW_RECONCILE_INTERVAL_S", "0.5", "0 (disabled) or at least 1"),
        ("PREVIEW_RECONCILE_INTERVAL_S", "-1", "at least 0"),
        ("PREVIEW_RECONCILE_UNKNOWN_AFTER_S", "30", "at least PREVIEW_RECONCILE_GRACE_S"),
    ],
)
def test_bad_reconcile_settings_are_named(variable: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        Settings.from_env({variable: value})
    assert caught.value.variable == variable


def test_reconcile_settings_defaults_and_zero() -> None:
    defaults = Settings.from_env({})
    assert defaults.reconcile_grace_s == 600.0
    assert defaults.reconcile_interval_s == 60.0
    assert defaults.reconcile_unknown_after_s == 86_400.0
    off = Settings.from_env({"PREVIEW_RECONCILE_INTERVAL_S": "0", "PREVIEW_RECONCILE_UNKNOWN_AFTER_S": "0"})
    assert (off.reconcile_interval_s, off.reconcile_unknown_after_s) == (0.0, 0.0)
