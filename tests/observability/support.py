"""Helpers for observability tests: free ports, scraping a /metrics endpoint."""

from __future__ import annotations

import socket
from typing import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from conftest import wait_until

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
