"""The job-status store contract, run against Redis, SQLite and memory."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterator

import pytest

from conftest import REDIS_URL, require_server
from preview_actors import BrokerUnavailableError, QueueFullError
from preview_actors.store import JobRecord, JobState, JobStore, open_store


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobStore]:
    if request.param == "redis":
        require_server("Redis", "127.0.0.1", 6379)
        store = open_store(REDIS_URL)
        store.client.flushdb()
    elif request.param == "sqlite":
        store = open_store(f"sqlite:///{tmp_path / 'jobs.db'}")
    else:
        store = open_store("memory://")
    yield store
    if request.param == "redis":
        store.client.flushdb()
    store.close()


def record(job_id: str = "job-1", **fields: object) -> JobRecord:
    values = dict(job_id=job_id, project_id="p", request_id="r", content_sha256="abc", request={"projectId": "p", "n": [1, "ü"]})
    values.update(fields)
    return JobRecord(**values)


def test_create_is_idempotent_on_job_id(store: JobStore) -> None:
    first, created = store.create(record())
    again, created_again = store.create(record(content_sha256="other"))

    assert created and not created_again
    assert again == first
    assert store.get("job-1") == first
    assert store.get("nope") is None


def test_update_round_trips_every_field(store: JobStore) -> None:
    store.create(record())

    updated = store.update(
        "job-1",
        state=JobState.RETRYING,
        progress=0.5,
        error={"code": "x", "message": "ü"},
        artifact={"video": {"size": 3}},
        dead_lettered=False,
        enqueued=True,
    )

    assert updated == store.get("job-1")
    assert (updated.state, updated.progress, updated.error["message"], updated.enqueued) == (JobState.RETRYING, 0.5, "ü", True)
    assert updated.updated_at >= updated.created_at
    assert updated.request == {"projectId": "p", "n": [1, "ü"]}


def test_a_finished_job_is_never_moved_back(store: JobStore) -> None:
    store.create(record())
    store.update("job-1", state=JobState.SUCCEEDED, progress=1.0)

    late = store.update("job-1", state=JobState.RENDERING, progress=0.1)

    assert late.state is JobState.SUCCEEDED and late.progress == 1.0
    replayed = store.update("job-1", allow_finished=True, state=JobState.QUEUED)
    assert replayed.state is JobState.QUEUED


def test_unfinished_count_and_queue_limit(store: JobStore) -> None:
    for n in range(3):
        store.create(record(f"job-{n}"), max_unfinished=3)
    with pytest.raises(QueueFullError) as raised:
        store.create(record("job-3"), max_unfinished=3)
    assert (raised.value.unfinished, raised.value.limit) == (3, 3)

    store.update("job-0", state=JobState.FAILED)
    assert store.count_unfinished() == 2
    store.create(record("job-3"), max_unfinished=3)
    assert store.count_unfinished() == 3
    # an existing job is returned even when the queue is full
    assert store.create(record("job-3"), max_unfinished=3)[1] is False


def test_queue_limit_holds_under_concurrent_creates(store: JobStore) -> None:
    outcomes: list[str] = []
    lock = threading.Lock()

    def submit(n: int) -> None:
        try:
            store.create(record(f"job-{n}"), max_unfinished=5)
            result = "created"
        except QueueFullError:
            result = "full"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes).count("created") == 5
    assert store.count_unfinished() == 5


def test_attempts_are_counted_atomically(store: JobStore) -> None:
    store.create(record())
    threads = [threading.Thread(target=store.begin_attempt, args=("job-1",)) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.get("job-1").attempts == 10
    started = store.begin_attempt("job-1", state=JobState.RENDERING, progress=0.05)
    assert (started.attempts, started.state, started.progress) == (11, JobState.RENDERING, 0.05)
    assert store.get("job-1") == started


def test_a_finished_job_starts_no_attempt(store: JobStore) -> None:
    store.create(record())
    store.update("job-1", state=JobState.CANCELLED)
    assert store.begin_attempt("job-1", state=JobState.RENDERING).state is JobState.CANCELLED
    assert store.get("job-1").attempts == 0
    assert store.begin_attempt("no-such-job") is None


def test_delete(store: JobStore) -> None:
    store.create(record())
    store.delete("job-1")
    assert store.get("job-1") is None
    assert store.count_unfinished() == 0


def test_status_document_is_camel_case() -> None:
    status = record(progress=0.123456).to_status()
    assert set(status) >= {"jobId", "projectId", "state", "progress", "attempts", "createdAt", "updatedAt", "requestId", "error", "artifact"}
    assert status["progress"] == 0.1235
    assert status["createdAt"].endswith("Z")


def test_unreachable_redis_is_reported_as_unavailable() -> None:
    store = open_store("redis://127.0.0.1:1/0")
    with pytest.raises(BrokerUnavailableError, match="unreachable"):
        store.get("job-1")
    with pytest.raises(BrokerUnavailableError):
        store.ping()


def test_unusable_sqlite_file_is_reported_as_unavailable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    store = open_store(f"sqlite:///{tmp_path / 'file' / 'jobs.db'}")
    with pytest.raises(BrokerUnavailableError, match="unusable"):
        store.ping()
