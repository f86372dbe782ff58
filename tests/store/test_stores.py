"""The job-status store contract, run against Redis, SQLite and memory."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REDIS_URL, require_server, wait_until

from preview_actors import BrokerUnavailableError, QueueFullError
from preview_actors.store import AttemptsExhausted, JobRecord, JobState, JobStore, open_store


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
    assert set(status) >= {
        "jobId", "projectId", "state", "progress", "attempts", "createdAt", "updatedAt", "requestId", "error", "artifact"
    }
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


# Named leases: one owner at a time, taken again once expired (helper C's reconciliation, the execution lease).


def test_a_lease_has_one_owner_until_released(store: JobStore) -> None:
    assert store.acquire_lease("reconcile", "worker-a", ttl_s=30) is True
    assert store.acquire_lease("reconcile", "worker-b", ttl_s=30) is False
    # the owner renews it
    assert store.acquire_lease("reconcile", "worker-a", ttl_s=30) is True

    store.release_lease("reconcile", "worker-b")  # not the owner: no effect
    assert store.acquire_lease("reconcile", "worker-b", ttl_s=30) is False

    store.release_lease("reconcile", "worker-a")
    assert store.acquire_lease("reconcile", "worker-b", ttl_s=30) is True
    # leases of other names are independent
    assert store.acquire_lease("job:1", "worker-a", ttl_s=30) is True
    store.release_lease("never-taken", "worker-a")


def test_an_expired_lease_is_taken_by_another_owner(store: JobStore) -> None:
    assert store.acquire_lease("reconcile", "worker-a", ttl_s=0.2)
    assert not store.acquire_lease("reconcile", "worker-b", ttl_s=0.2)

    wait_until(lambda: store.acquire_lease("reconcile", "worker-b", ttl_s=30), timeout_s=5, what="the lease to expire")

    # the former owner can no longer renew it, and its release leaves the new owner's lease alone
    assert not store.acquire_lease("reconcile", "worker-a", ttl_s=30)
    store.release_lease("reconcile", "worker-a")
    assert not store.acquire_lease("reconcile", "worker-c", ttl_s=30)


def test_renewing_extends_a_lease(store: JobStore) -> None:
    assert store.acquire_lease("job:1", "worker-a", ttl_s=0.4)
    deadline = time.monotonic() + 1.2  # three times the ttl
    while time.monotonic() < deadline:
        assert store.acquire_lease("job:1", "worker-a", ttl_s=0.4)
        assert not store.acquire_lease("job:1", "worker-b", ttl_s=0.4)
        time.sleep(0.1)


def test_one_of_many_concurrent_claimants_gets_a_lease(store: JobStore) -> None:
    winners: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def claim(owner: str) -> None:
        start.wait()
        if store.acquire_lease("reconcile", owner, ttl_s=30):
            with lock:
                winners.append(owner)

    threads = [threading.Thread(target=claim, args=(f"worker-{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1


@pytest.mark.parametrize(
    ("name", "owner", "ttl_s", "problem"),
    [
        ("", "a", 1.0, "name"),
        ("x", "", 1.0, "owner"),
        ("x", "a", 0.0, "ttl_s"),
        ("x", "a", -1.0, "ttl_s"),
        ("x", "a", float("nan"), "ttl_s"),
    ],
)
def test_bad_lease_arguments_are_refused(store: JobStore, name: str, owner: str, ttl_s: float, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        store.acquire_lease(name, owner, ttl_s)


# The render attempt budget: attempts started, counted across worker deaths.


def test_begin_attempt_refuses_beyond_the_attempt_budget(store: JobStore) -> None:
    store.create(record())
    assert store.begin_attempt("job-1", max_attempts=2, state=JobState.RENDERING).attempts == 1
    assert store.begin_attempt("job-1", max_attempts=2, state=JobState.RENDERING).attempts == 2

    with pytest.raises(AttemptsExhausted) as raised:
        store.begin_attempt("job-1", max_attempts=2, state=JobState.QUEUED, progress=0.5)

    assert raised.value.record == store.get("job-1")
    assert (raised.value.record.attempts, raised.value.record.state, raised.value.record.progress) == (2, JobState.RENDERING, 0.0)
    assert "2 render attempts" in str(raised.value)


def test_a_fresh_budget_starts_at_attempt_base(store: JobStore) -> None:
    # Given a job that used its budget of two attempts
    store.create(record())
    for _ in range(2):
        store.begin_attempt("job-1", max_attempts=2)
    # When a replay starts a fresh budget (attempts stay numbered on)
    store.update("job-1", allow_finished=True, attempt_base=2)
    # Then two more attempts may start, numbered 3 and 4
    assert [store.begin_attempt("job-1", max_attempts=2).attempts for _ in range(2)] == [3, 4]
    with pytest.raises(AttemptsExhausted):
        store.begin_attempt("job-1", max_attempts=2)
    assert store.get("job-1").attempt_base == 2


def test_the_attempt_budget_holds_under_concurrent_starts(store: JobStore) -> None:
    store.create(record())
    outcomes: list[str] = []
    lock = threading.Lock()

    def start() -> None:
        try:
            store.begin_attempt("job-1", max_attempts=3)
            outcome = "started"
        except AttemptsExhausted:
            outcome = "refused"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=start) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * 7 + ["started"] * 3
    assert store.get("job-1").attempts == 3


@pytest.mark.parametrize("state", [JobState.HASHING, JobState.FINALIZING])
def test_a_rendered_job_starts_no_attempt(store: JobStore, state: JobState) -> None:
    # a copy of a render message delivered after the render finished must not render again
    store.create(record())
    store.begin_attempt("job-1")
    store.update("job-1", state=state, progress=0.9)

    again = store.begin_attempt("job-1", max_attempts=5, state=JobState.RENDERING, progress=0.05)

    assert (again.state, again.attempts, again.progress) == (state, 1, 0.9)
    assert store.get("job-1") == again


def test_the_attempt_budget_must_be_positive(store: JobStore) -> None:
    store.create(record())
    with pytest.raises(ValueError, match="max_attempts"):
        store.begin_attempt("job-1", max_attempts=0)


def test_a_job_database_from_before_the_attempt_budget_is_upgraded_in_place(tmp_path: Path) -> None:
    # Given a jobs.db written by the previous release (no attempt_base column, no leases table)
    path = tmp_path / "jobs.db"
    old_columns = [name for name in record().to_fields() if name != "attempt_base"]
    with sqlite3.connect(path) as connection:
        connection.execute(
            f"CREATE TABLE preview_jobs ({', '.join(f'{name} TEXT' for name in old_columns)}, PRIMARY KEY (job_id))"
        )
        fields = {name: value for name, value in record(attempts=2).to_fields().items() if name != "attempt_base"}
        connection.execute(
            f"INSERT INTO preview_jobs ({', '.join(fields)}) VALUES ({', '.join('?' * len(fields))})", list(fields.values())
        )
    connection.close()

    # When this release opens it
    store = open_store(f"sqlite:///{path}")
    try:
        # Then the old job reads with a budget starting at 0, and attempts and leases work
        assert (store.get("job-1").attempts, store.get("job-1").attempt_base) == (2, 0)
        with pytest.raises(AttemptsExhausted):
            store.begin_attempt("job-1", max_attempts=2)
        assert store.acquire_lease("job:job-1", "worker-a", ttl_s=30)
    finally:
        store.close()
    # and a second opening (another process) finds it upgraded already
    again = open_store(f"sqlite:///{path}")
    assert again.get("job-1").attempt_base == 0
    again.close()
