"""Prometheus metrics (prefix ``preview_``), on prometheus-client's default registry.

A host's existing ``/metrics`` endpoint shows them too. Under several worker
processes set ``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess
mode): counters and histograms add up across processes, renders in progress
add up over live processes, and the queue depth is the value set last by any
process. :func:`exposition_registry` is what to serve in either mode.
"""

from __future__ import annotations

import os

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

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
QUEUE_DEPTH = Gauge(
    "preview_queue_depth", "Unfinished jobs (queued, rendering, retrying…) as last seen.", multiprocess_mode="mostrecent"
)
RENDERS_IN_PROGRESS = Gauge(
    "preview_renders_in_progress", "Renderer processes running now.", multiprocess_mode="livesum"
)
ARTIFACT_BYTES = Histogram("preview_artifact_bytes", "Size of stored artifacts, by role.", ["role"], buckets=SIZE_BUCKETS_BYTES)
SEGMENT_CACHE = Counter(
    "preview_segment_cache_total", "Segments the renderer reused (hit) or encoded (miss).", ["result"]
)


def multiprocess_dir() -> str | None:
    """``PROMETHEUS_MULTIPROC_DIR`` when prometheus-client runs in multiprocess mode, else None."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir") or None


def exposition_registry() -> CollectorRegistry:
    """What a ``/metrics`` endpoint serves: every process's files in multiprocess mode, else this process's registry."""
    if multiprocess_dir() is None:
        return REGISTRY
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry
