"""Prometheus metrics (prefix ``preview_``), on prometheus-client's default registry.

A host's existing ``/metrics`` endpoint shows them too. Under several worker
processes set ``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess
mode): counters and histograms add up across processes, renders in progress
add up over live processes. :func:`exposition_registry` is what to serve in
either mode.

A gauge describes the present, so it is read when scraped, never set by
an event and remembered: ``preview_queue_depth`` (and
``preview_job_store_up``) come from :data:`JOB_STORE`, a collector that asks
the job store at each scrape. Nothing else keeps a gauge that could outlive
its cause: renders in progress are counted up and down around the renderer
by the process running it, and the files of processes that are gone are
left out of a multiprocess scrape (see :class:`MultiProcessExposition`).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .errors import ConfigError

if TYPE_CHECKING:
    from .store import JobStore

logger = logging.getLogger(__name__)


def multiprocess_dir() -> str | None:
    """``PROMETHEUS_MULTIPROC_DIR`` when prometheus-client runs in multiprocess mode, else None."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir") or None


def _check_multiprocess_dir() -> None:
    """prometheus-client opens a file there as each metric below is declared: name the variable if it cannot."""
    directory = multiprocess_dir()
    if directory is not None and not os.path.isdir(directory):
        raise ConfigError("PROMETHEUS_MULTIPROC_DIR", f"{directory} is not a directory (create it before starting)")


_check_multiprocess_dir()

#: Seconds; renders take from a fraction of a second to many minutes.
DURATION_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, float("inf"))
#: Bytes, 10 KB to 2 GB.
SIZE_BUCKETS_BYTES = (1e4, 1e5, 1e6, 1e7, 5e7, 1e8, 5e8, 1e9, 2e9, float("inf"))

JOBS_SUBMITTED = Counter("preview_jobs_submitted_total", "Jobs accepted for rendering.")
JOBS_REJECTED = Counter(
    "preview_jobs_rejected_total",
    "Submissions refused, by reason (invalid, conflict, queue_full, too_large, unavailable, not_json).",
    ["reason"],
)
JOBS_COMPLETED = Counter("preview_jobs_completed_total", "Jobs that reached a final state, by outcome.", ["outcome"])
JOB_RETRIES = Counter("preview_job_retries_total", "Stage failures that were retried, by stage.", ["stage"])
JOBS_DEAD_LETTERED = Counter("preview_jobs_dead_lettered_total", "Jobs whose message was dead-lettered.")
STAGE_DURATION = Histogram(
    "preview_stage_duration_seconds", "Time spent in each stage.", ["stage"], buckets=DURATION_BUCKETS_S
)
JOB_DURATION = Histogram(
    "preview_job_duration_seconds", "From submission to success.", buckets=DURATION_BUCKETS_S
)
RENDERS_IN_PROGRESS = Gauge(
    "preview_renders_in_progress", "Renderer processes running now.", multiprocess_mode="livesum"
)
ARTIFACT_BYTES = Histogram("preview_artifact_bytes", "Size of stored artifacts, by role.", ["role"], buckets=SIZE_BUCKETS_BYTES)
SEGMENT_CACHE = Counter(
    "preview_segment_cache_total", "Segments the renderer reused (hit) or encoded (miss).", ["result"]
)
RENDER_WARNINGS = Counter(
    "preview_render_warnings_total",
    "Warnings of successful renders, by kind (the warning's code: missing_glyphs, truncated_asset…); once per job.",
    ["kind"],
)
JOBS_RECONCILED = Counter(
    "preview_jobs_reconciled_total",
    "Unfinished jobs whose message was on no queue, by what the reconciliation did (requeued, failed).",
    ["action"],
)


QUEUE_DEPTH_HELP = "Unfinished jobs (queued, rendering, retrying…), read from the job store at this scrape."
JOB_STORE_UP_HELP = "1 when this scrape could read the job store, 0 when it could not (no queue depth then)."


class JobStoreCollector(Collector):
    """``preview_queue_depth`` and ``preview_job_store_up``, read from the job store at each scrape.

    :meth:`watch` names the store (``preview_actors.setup`` does). A store that
    cannot be read gives ``preview_job_store_up 0`` and no queue depth — never
    a remembered one — and one warning per outage.
    """

    def __init__(self) -> None:
        self._store: JobStore | None = None
        self._lock = threading.Lock()
        self._unreadable = False  # whether the last read failed, so an outage is logged once

    def watch(self, store: JobStore) -> None:
        """Read ``store`` from now on."""
        self._store = store

    def describe(self) -> Iterator[Metric]:
        """The families :meth:`collect` yields, without reading the store (asked when registering)."""
        yield GaugeMetricFamily("preview_queue_depth", QUEUE_DEPTH_HELP)
        yield GaugeMetricFamily("preview_job_store_up", JOB_STORE_UP_HELP)

    def collect(self) -> Iterator[Metric]:
        store = self._store
        if store is None:
            return
        try:
            depth = store.count_unfinished()
        except Exception as error:  # a scrape must answer whatever the store does
            self._note(readable=False, error=error)
            yield GaugeMetricFamily("preview_job_store_up", JOB_STORE_UP_HELP, value=0)
            return
        self._note(readable=True)
        yield GaugeMetricFamily("preview_queue_depth", QUEUE_DEPTH_HELP, value=depth)
        yield GaugeMetricFamily("preview_job_store_up", JOB_STORE_UP_HELP, value=1)

    def _note(self, *, readable: bool, error: BaseException | None = None) -> None:
        """Log the start and the end of an outage, not every scrape during it."""
        with self._lock:
            was_unreadable, self._unreadable = self._unreadable, not readable
        if not readable and not was_unreadable:
            logger.warning("Queue depth not served: the job store cannot be read: %s", error)
        elif readable and was_unreadable:
            logger.info("Queue depth served again: the job store can be read.")


#: The job store's gauges, on the default registry; ``preview_actors.setup`` tells it which store.
JOB_STORE = JobStoreCollector()
REGISTRY.register(JOB_STORE)

#: ``<kind>_<pid>.db``: a file of prometheus-client's multiprocess mode, and the process that writes it.
_PROCESS_FILE = re.compile(r"^.+_(\d+)\.db$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def _files_of_dead_processes(directory: str) -> Iterator[tuple[Path, int]]:
    for path in Path(directory).glob("*.db"):
        match = _PROCESS_FILE.match(path.name)
        if match is not None and not _alive(int(match.group(1))):
            yield path, int(match.group(1))


def remove_files_of_earlier_runs(directory: str) -> int:
    """Delete the multiprocess files of processes that are gone; return how many.

    Run when a worker process boots: ``dramatiq`` stops all its processes
    when one dies, so a process that is gone at start-up belonged to an
    earlier run, whose counters must not be added to this run's and whose
    "in progress" gauges are long over. Files of live processes (the
    siblings starting alongside) are left alone.
    """
    removed = 0
    for path, _ in _files_of_dead_processes(directory):
        try:
            path.unlink()
        except FileNotFoundError:  # a sibling removed it first
            continue
        removed += 1
    return removed


class MultiProcessExposition(Collector):
    """prometheus-client's :class:`~prometheus_client.multiprocess.MultiProcessCollector`, minus live gauges of the dead.

    A process killed outright (OOM, SIGKILL) never marks itself dead, so its
    ``livesum`` gauges (renders in progress) would be added forever; each
    scrape first drops the live-gauge files of processes that are gone.
    Their counters stay: what they counted happened.
    """

    def __init__(self, directory: str) -> None:
        from prometheus_client import multiprocess

        self.directory = directory
        self._collector = multiprocess.MultiProcessCollector(None, path=directory)

    def collect(self) -> Iterator[Metric]:
        from prometheus_client import multiprocess

        for pid in {pid for _, pid in _files_of_dead_processes(self.directory)}:
            multiprocess.mark_process_dead(pid, self.directory)
        yield from self._collector.collect()


def exposition_registry() -> CollectorRegistry:
    """What a ``/metrics`` endpoint serves: this process's registry, or in multiprocess mode every
    process's files plus the gauges read at scrape (:data:`JOB_STORE`)."""
    directory = multiprocess_dir()
    if directory is None:
        return REGISTRY
    registry = CollectorRegistry()
    registry.register(MultiProcessExposition(directory))
    registry.register(JOB_STORE)
    return registry
