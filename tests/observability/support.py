"""Helpers for observability tests: free ports, scraping a /metrics endpoint."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
from conftest import REPO, wait_until
from prometheus_client.parser import text_string_to_metric_families
from workers import worker_env

from preview_actors.runtime import Runtime

#: Scraped samples: (sample name, sorted label pairs) → value.
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def free_port() -> int:
    """A TCP port free right now on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scrape(url: str) -> Samples:
    """GET a Prometheus text exposition; return {(sample name, sorted labels): value}."""
    response = httpx.get(url, timeout=5)
    response.raise_for_status()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when absent (a labelled counter not incremented yet)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape_until(url: str, predicate: Callable[[Samples], bool], *, what: str, timeout_s: float = 15.0) -> Samples:
    """Scrape ``url`` until ``predicate`` holds for the samples; return them (fail at the deadline)."""

    def attempt() -> Samples | None:
        samples = scrape(url)
        return samples if predicate(samples) else None

    return wait_until(attempt, timeout_s=timeout_s, what=what)


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 now."""
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@contextlib.contextmanager
def api_server(runtime: Runtime, log_path: Path, **env: str) -> Iterator[str]:
    """``preview-worker serve`` on a free port, on the runtime's broker and store; yields its base URL."""
    port = free_port()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "preview_worker", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=worker_env(runtime, **env), cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(f"{base}/metrics"), timeout_s=60, what="the API to serve /metrics")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def leave_files_of_a_dead_process(directory: Path) -> None:
    """What a worker process killed outright leaves in a multiprocess directory: 5 jobs counted, a render in progress."""
    program = (
        "from prometheus_client import Counter, Gauge\n"
        "Counter('preview_jobs_completed_total', 'x', ['outcome']).labels(outcome='succeeded').inc(5)\n"
        "Gauge('preview_renders_in_progress', 'x', multiprocess_mode='livesum').inc()\n"
    )
    env = {"PROMETHEUS_MULTIPROC_DIR": str(directory), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", program], env=env, check=True, timeout=60)
    assert len(list(directory.glob("*.db"))) == 2
