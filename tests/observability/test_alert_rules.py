"""The alert rules shipped in ``docs/alerts.yml``, checked and unit-tested by ``promtool``.

``docs/alerts_test.yml`` plays an idle system (no alert), a stuck queue, a
dead worker and the case of each other alert. promtool comes with Debian's
``prometheus`` package (``.ci/run`` installs it); without it these tests
skip locally and fail in CI.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from conftest import IN_CI, REPO

RULES = REPO / "docs" / "alerts.yml"
RULE_TESTS = REPO / "docs" / "alerts_test.yml"
MONITORING = REPO / "docs" / "MONITORING_AND_ROLLBACK.md"


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        message = "promtool is not installed (apt-get install --no-install-recommends prometheus)"
        if IN_CI:
            pytest.fail(message + "; CI must test the alert rules")
        pytest.skip(message)
    return path


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], cwd=REPO, capture_output=True, text=True, timeout=120)


def alert_names() -> list[str]:
    return re.findall(r"^\s*- alert: (\w+)\s*$", RULES.read_text(), flags=re.MULTILINE)


def test_the_rules_file_is_valid() -> None:
    checked = run_promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(alert_names())} rules found" in checked.stdout


def test_the_rules_unit_tests_pass() -> None:
    tested = run_promtool("test", "rules", str(RULE_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_is_seen_firing_and_an_idle_system_fires_none() -> None:
    text = RULE_TESTS.read_text()
    names = alert_names()
    assert len(names) >= 6, names
    fired = set(re.findall(r"alertname: (\w+)\n\s+exp_alerts:\n\s+- exp_labels:", text))
    assert set(names) <= fired, f"alerts never tested firing: {sorted(set(names) - fired)}"
    idle = text.split("\n  # Idle:", 1)[1].split("\n\n  # ", 1)[0]
    quiet = set(re.findall(r"alertname: (\w+)\n\s+exp_alerts: \[\]", idle))
    assert quiet == set(names), f"the idle case must expect no alert of each name; missing: {sorted(set(names) - quiet)}"


def test_the_monitoring_doc_points_at_the_rules_file_instead_of_a_copy() -> None:
    doc = MONITORING.read_text()
    assert "alerts.yml" in doc and "alerts_test.yml" in doc
    assert "- alert:" not in doc, "the rules live in docs/alerts.yml only"
