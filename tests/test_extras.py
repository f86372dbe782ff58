"""A broker or store URL whose driver extra is not installed: one line naming the extra, no traceback.

``pip install preview-worker`` brings neither redis nor pika. The worker, the
command line and the API server are run here with both made unimportable
(a ``sitecustomize`` on ``PYTHONPATH`` that makes importing them raise
``ModuleNotFoundError``, as in an environment without the extras); each must
exit non-zero with the ``pip install 'preview-worker[…]'`` that fixes it.
``.ci/run`` checks the same in a real fresh environment.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import AMQP_URL, REDIS_URL, REPO

from preview_actors.extras import MissingExtraError, require_driver

#: Makes ``import redis`` and ``import pika`` fail as they do when the extras are not installed.
SITECUSTOMIZE = """\
import importlib.abc
import sys

MISSING = {"redis", "pika"}


class _NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in MISSING:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NotInstalled())
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


ENTRY_POINTS = {
    "worker": ["-m", "dramatiq", "preview_actors", "--processes", "1", "--threads", "1"],
    "dlq list": ["-m", "preview_worker", "dlq", "list"],
    "serve": ["-m", "preview_worker", "serve", "--port", "{port}"],
    "uvicorn": ["-m", "uvicorn", "preview_api.asgi:app", "--port", "{port}"],
}

#: The variable set, its URL and the extra that URL needs.
SETTINGS = {
    "redis broker": ("PREVIEW_BROKER_URL", REDIS_URL, "redis"),
    "rabbitmq broker": ("PREVIEW_BROKER_URL", AMQP_URL, "rabbitmq"),
    "redis store": ("PREVIEW_STORE_URL", REDIS_URL, "redis"),
}


@pytest.mark.parametrize("entry_point", list(ENTRY_POINTS))
@pytest.mark.parametrize("setting", list(SETTINGS))
def test_a_missing_extra_is_one_line_naming_it(tmp_path: Path, entry_point: str, setting: str) -> None:
    # Given an environment without redis and pika, and a URL that needs one of them
    (tmp_path / "sitecustomize.py").write_text(SITECUSTOMIZE)
    variable, url, extra = SETTINGS[setting]
    env = {name: value for name, value in os.environ.items() if not name.startswith("PREVIEW_")}
    env.update({variable: url}, DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(tmp_path), PREVIEW_METRICS_PORT="0")
    argv = [part.format(port=free_port()) for part in ENTRY_POINTS[entry_point]]

    # When the worker, the command line or the API server starts
    result = subprocess.run(
        [sys.executable, *argv], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=90
    )

    # Then it exits non-zero with one line naming the variable and the extra, and no traceback
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    expected = f"{variable}: {url.partition(':')[0]}:// needs the '{extra}' extra"
    lines = [line for line in output.splitlines() if expected in line]
    assert len(lines) == 1, output
    assert f"pip install 'preview-worker[{extra}]'" in lines[0]
    assert "Traceback" not in output and "ModuleNotFoundError" not in output, output


def test_require_driver_names_the_variable_and_the_extra() -> None:
    # The drivers are installed here: nothing to say
    require_driver("PREVIEW_BROKER_URL", "redis://127.0.0.1:6379/0")
    require_driver("PREVIEW_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
    require_driver("PREVIEW_BROKER_URL", "sqlite:///queue.db")  # no driver to check

    error = MissingExtraError("PREVIEW_STORE_URL", "rediss", "redis")
    assert str(error) == "PREVIEW_STORE_URL: rediss:// needs the 'redis' extra: pip install 'preview-worker[redis]'"
    assert error.variable == "PREVIEW_STORE_URL" and error.extra == "redis"


def test_the_ci_script_checks_a_real_environment_without_extras() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    assert "pip install 'preview-worker[$extra]'" in ci
    for extra in ("redis", "rabbitmq"):
        assert f"expect_missing_extra {extra} preview-worker dlq list" in ci
    assert "expect_missing_extra redis dramatiq preview_actors" in ci


def test_a_host_importing_the_library_gets_the_config_error(tmp_path: Path) -> None:
    # Given a host application's process (not one of the library's commands) and a missing extra
    (tmp_path / "sitecustomize.py").write_text(SITECUSTOMIZE)
    (tmp_path / "host.py").write_text(
        "try:\n"
        "    import preview_actors\n"
        "except Exception as error:\n"
        "    print('host caught:', type(error).__mro__[1].__name__, error)\n"
    )
    env = {name: value for name, value in os.environ.items() if not name.startswith("PREVIEW_")}
    env.update(PREVIEW_BROKER_URL=REDIS_URL, DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(tmp_path))

    # When it imports preview_actors
    result = subprocess.run([sys.executable, "host.py"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)

    # Then it gets a ConfigError to handle, not an exit of its whole process
    assert result.returncode == 0, result.stdout + result.stderr
    assert "host caught: ConfigError PREVIEW_BROKER_URL: redis:// needs the 'redis' extra" in result.stdout
