"""Every command of README.md and docs/*.md runs as written, against real services.

Each fenced ``sh`` or ``python`` block of those documents carries a marker on
the line before its fence, ``<!-- test: ID -->``, and a test here runs it:

- README "On one machine": the worker (SQLite) and the API server start from
  their blocks, in a folder standing for the checkout, and the example chapter
  is submitted through the API and must succeed; the ``jq`` recipe of "Logs"
  then follows its request id in the worker's log;
- docs/SMOKE_TESTS.md's commands run against that worker and API server, and
  ``readyz`` and ``smoke`` once more against an API whose broker is down;
- the production worker command runs on Redis, the metrics commands with
  their scrape, the Python snippets with checks of what they promise;
- blocks whose ID starts with ``ci-`` are run by ``.ci/run``, which must hold
  each of their lines verbatim.

A ``text`` block with a marker is the documented output of a command: each of
its lines must match a line of the output, in order, ``…`` standing for any
text. Documents describe production (``https://HOST``, ``redis.internal``,
``/srv``); what runs differs from what is written only by the substitutions
each test spells out, and by ``PREVIEW_METRICS_PORT=0`` for workers that do not
test metrics (so that they do not fight over port 9191). An unmarked command
block, a marker no test runs, or a test naming a block no document has fails
:func:`test_every_command_block_is_marked_and_run`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import attrs
import httpx
import pytest
from conftest import REDIS_URL, REPO, require_server, wait_until

pytestmark = pytest.mark.slow

DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
#: Fence info strings of blocks that are commands to run.
COMMAND_LANGUAGES = frozenset({"sh", "bash", "shell", "console", "python", "py"})
MARKER = re.compile(r"<!--\s*test:\s*(?P<id>[\w.-]+)\s*-->")
FENCE = re.compile(r"(?P<fence>```+|~~~+)\s*(?P<info>[^`]*)")
#: Seconds a documented command may take (the example chapter's full render included).
COMMAND_TIMEOUT_S = 180.0


@attrs.frozen
class Block:
    """One fenced block of a document, with the ID of its marker (None when unmarked)."""

    id: str | None
    document: str
    line: int
    language: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.document}:{self.line}"

    def command(self, substitutions: Mapping[str, str] | None = None) -> str:
        """The block's text with each written string replaced by what runs here.

        Fails when a substitution no longer applies: the document changed and
        this test must follow.
        """
        text = self.text
        for written, run in (substitutions or {}).items():
            if written not in text:
                raise AssertionError(f"{self.where}: block {self.id!r} no longer contains {written!r}")
            text = text.replace(written, run)
        return text


def read_blocks(documents: list[Path]) -> list[Block]:
    blocks = []
    for path in documents:
        lines = path.read_text(encoding="utf-8").splitlines()
        index = 0
        while index < len(lines):
            opening = FENCE.fullmatch(lines[index].strip())
            if opening is None:
                index += 1
                continue
            start = index
            body: list[str] = []
            index += 1
            while index < len(lines) and lines[index].strip() != opening["fence"]:
                body.append(lines[index])
                index += 1
            index += 1
            previous = next((line.strip() for line in reversed(lines[:start]) if line.strip()), "")
            marker = MARKER.fullmatch(previous)
            info = opening["info"].split()
            blocks.append(
                Block(
                    id=marker["id"] if marker else None,
                    document=str(path.relative_to(REPO)),
                    line=start + 1,
                    language=info[0].lower() if info else "",
                    text="\n".join(body),
                )
            )
    return blocks


BLOCKS = read_blocks(DOCUMENTS)
#: The IDs of the blocks the tests below run; each test declares its own with :func:`runs`.
RUN: set[str] = set()


def runs(*ids: str) -> None:
    RUN.update(ids)


def block(block_id: str) -> Block:
    found = [candidate for candidate in BLOCKS if candidate.id == block_id]
    if not found:
        raise AssertionError(f"no document has a block marked <!-- test: {block_id} -->")
    return found[0]


def expect_output(block_id: str, output: str) -> None:
    """Each line of the documented output matches a line of ``output``, in order (``…``: any text)."""
    documented = block(block_id)
    actual = [line.rstrip() for line in output.splitlines()]
    position = 0
    for line in (line for line in documented.text.splitlines() if line.strip()):
        pattern = re.compile(".*?".join(re.escape(part) for part in line.strip().split("…")))
        while position < len(actual) and pattern.fullmatch(actual[position]) is None:
            position += 1
        if position == len(actual):
            raise AssertionError(f"{documented.where}: documented line {line!r} is not in the output:\n{output}")
        position += 1


def says(pattern_text: str, line: str) -> bool:
    """Whether ``line`` is what ``pattern_text`` documents (``…``: any text)."""
    pattern = ".*?".join(re.escape(part) for part in pattern_text.split("…"))
    return re.fullmatch(pattern, line.strip()) is not None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env(**extra: str) -> dict[str, str]:
    """The test's environment without preview-worker's settings, with this Python's scripts first on PATH."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("PREVIEW_") and name not in ("DATA_DIR", "PROMETHEUS_MULTIPROC_DIR")
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(PREVIEW_METRICS_PORT="0", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def shell(command: str, *, cwd: Path, env: Mapping[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``command`` with bash (``-euo pipefail``); fail, showing its output, when ``check`` and it fails."""
    result = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + command],
        cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{command!r} exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return result


def python(code: str, *, cwd: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-"], input=code, cwd=cwd, env=dict(env), capture_output=True, text=True,
        timeout=COMMAND_TIMEOUT_S,
    )
    if result.returncode != 0:
        raise AssertionError(f"the Python block exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return result


def exported(env_block: Block, *, cwd: Path, env: Mapping[str, str]) -> dict[str, str]:
    """The environment after running ``env_block`` (its ``export``s), as each terminal would have it."""
    result = shell(env_block.command() + "\nenv -0", cwd=cwd, env=env)
    variables = dict(entry.split("=", 1) for entry in result.stdout.split("\0") if "=" in entry)
    for shell_own in ("_", "SHLVL", "PWD", "OLDPWD"):
        variables.pop(shell_own, None)
    return variables


class Service:
    """A long-running documented command, as in a terminal of its own: bash in its own process group."""

    def __init__(self, command: str, *, cwd: Path, env: Mapping[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.process = subprocess.Popen(
            ["bash", "-c", "set -euo pipefail\n" + command],
            cwd=cwd, env=dict(env), stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, ready: Callable[[], object], what: str, timeout_s: float = 90.0) -> None:
        def check() -> object:
            if self.process.poll() is not None:
                raise AssertionError(f"exited with {self.process.returncode} before {what}:\n{self.output}")
            return ready()

        wait_until(check, timeout_s=timeout_s, what=what)

    def stop(self, timeout_s: float = 60.0) -> int:
        """Ctrl-C, as in its terminal (SIGINT to its process group); its exit status."""
        group = self.process.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGINT)
        try:
            self.process.wait(timeout=timeout_s)
            wait_until(lambda: not group_alive(group), timeout_s=timeout_s, what="the command's processes to end")
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
            self.process.wait(timeout=30)
            self._log.close()
        return self.process.returncode


def group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def answers(url: str, **headers: str) -> bool:
    try:
        return httpx.get(url, timeout=2, headers=headers).status_code == 200
    except httpx.HTTPError:
        return False


def documented_failures() -> list[str]:
    """The ``it says`` column of docs/SMOKE_TESTS.md's failure table."""
    text = (REPO / "docs" / "SMOKE_TESTS.md").read_text(encoding="utf-8")
    return list(re.findall(r"^\| `([^`]+)`", text, flags=re.MULTILINE))


# -- the documents themselves -------------------------------------------------------------------


def test_every_command_block_is_marked_and_run() -> None:
    unmarked = [b.where for b in BLOCKS if b.language in COMMAND_LANGUAGES and b.id is None]
    assert not unmarked, f"command blocks without a <!-- test: ID --> marker: {unmarked}"
    ids = [b.id for b in BLOCKS if b.id is not None]
    assert len(ids) == len(set(ids)), f"marker IDs used twice: {sorted({i for i in ids if ids.count(i) > 1})}"
    assert not set(ids) - RUN, f"marked blocks no test runs: {sorted(set(ids) - RUN)}"
    assert not RUN - set(ids), f"tests run blocks no document has: {sorted(RUN - set(ids))}"


runs("ci-render", "ci-test", "ci-promtool")


def test_the_ci_blocks_are_run_by_ci() -> None:
    ci_lines = {line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()}
    ci_blocks = [b for b in BLOCKS if b.id is not None and b.id.startswith("ci-")]
    assert ci_blocks
    for ci_block in ci_blocks:
        for line in filter(None, (line.strip() for line in ci_block.text.splitlines())):
            assert line in ci_lines, f"{ci_block.where}: .ci/run does not run {line!r}"


def test_the_worker_shutdown_timeout_is_given_in_milliseconds() -> None:
    help_text = subprocess.run(
        [sys.executable, "-m", "dramatiq", "--help"], capture_output=True, text=True, timeout=60
    ).stdout
    flag = re.search(r"--worker-shutdown-timeout WORKER_SHUTDOWN_TIMEOUT\s+(?P<help>[^-]+)", help_text)
    assert flag is not None and "in milliseconds" in " ".join(flag["help"].split()), help_text
    mentions = 0
    for path in DOCUMENTS:
        for paragraph in re.split(r"\n\s*\n", path.read_text(encoding="utf-8")):
            if "--worker-shutdown-timeout" not in paragraph:
                continue
            mentions += 1
            assert "milliseconds" in paragraph, f"{path.name}: say --worker-shutdown-timeout is in milliseconds"
            for value in re.findall(r"--worker-shutdown-timeout[ =](\d+)", paragraph):
                assert int(value) >= 1000, f"{path.name}: --worker-shutdown-timeout {value} is {value} ms"
    assert mentions


# -- On one machine: a worker, the API server and the example chapter ---------------------------


@attrs.frozen
class OneMachine:
    checkout: Path
    env: dict[str, str]
    api: str
    #: Written → run: where the API server answers.
    substitutions: dict[str, str]

    def status(self, job_id: str) -> dict[str, object]:
        answer = httpx.get(
            f"{self.api}/{job_id}/status", headers={"Authorization": f"Bearer {self.env['PREVIEW_API_TOKEN']}"}, timeout=10
        )
        answer.raise_for_status()
        document: dict[str, object] = answer.json()
        return document


runs("quickstart-env", "quickstart-worker", "quickstart-api")


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder standing for the checkout's top folder: its examples are the repository's, what commands write stays here."""
    folder = tmp_path_factory.mktemp("checkout")
    (folder / "examples").symlink_to(REPO / "examples", target_is_directory=True)
    return folder


@pytest.fixture(scope="module")
def one_machine(checkout: Path) -> Iterator[OneMachine]:
    env = exported(block("quickstart-env"), cwd=checkout, env=base_env())
    port = free_port()
    url = f"http://127.0.0.1:{port}/api/preview"
    with contextlib.ExitStack() as running:
        worker = Service(block("quickstart-worker").command(), cwd=checkout, env=env, log_path=checkout / "worker-terminal.log")
        running.callback(worker.stop)
        command = block("quickstart-api").command({"--port 8000": f"--port {port}"})
        api = Service(command, cwd=checkout, env=env, log_path=checkout / "api-terminal.log")
        running.callback(api.stop)
        worker.wait_for(lambda: "ready for action" in worker.output, "the worker to start")
        api.wait_for(lambda: answers(f"{url}/healthz"), "the API server to answer")
        yield OneMachine(checkout, env, url, {"127.0.0.1:8000": f"127.0.0.1:{port}"})


runs("quickstart-submit", "quickstart-submit-output", "logs-follow")


def test_the_example_chapter_submitted_through_the_api_succeeds(one_machine: OneMachine) -> None:
    # Given a worker and the API started as the README says
    # When the example chapter is submitted, followed and downloaded as it says
    command = block("quickstart-submit").command(one_machine.substitutions)
    submitted = shell(command, cwd=one_machine.checkout, env=one_machine.env)

    # Then the job succeeded and its video is saved and verified
    expect_output("quickstart-submit-output", submitted.stdout)
    saved = re.search(r"^video: (\S+\.mp4) ", submitted.stdout, flags=re.MULTILINE)
    assert saved is not None and (one_machine.checkout / saved[1]).stat().st_size > 0

    # And the Logs section's recipe follows its request id through every stage in the worker's log
    followed = shell(block("logs-follow").command(), cwd=one_machine.checkout, env=one_machine.env)
    lines = [json.loads(line) for line in followed.stdout.splitlines()]
    assert lines and all(line["requestId"] == "tour-1" for line in lines)
    assert {"render", "hash", "finalize"} <= {line.get("stage") for line in lines}


runs("submit-python")


def test_submitting_from_python_reaches_the_workers(one_machine: OneMachine) -> None:
    printed = python(block("submit-python").command(), cwd=one_machine.checkout, env=one_machine.env).stdout
    job_id, state = printed.split()
    assert state == "queued" and str(uuid.UUID(job_id)) == job_id
    wait_until(
        lambda: one_machine.status(job_id)["state"] == "succeeded", timeout_s=120, what=f"job {job_id} to succeed"
    )


runs(
    "smoke-healthz", "smoke-healthz-output", "smoke-readyz", "smoke-readyz-output", "smoke-worker-ready",
    "smoke-run", "smoke-run-output", "smoke-dlq", "smoke-dlq-output",
)


def test_the_smoke_tests_runbook(one_machine: OneMachine) -> None:
    host = {"https://HOST": one_machine.api.removesuffix("/api/preview")}

    def run(block_id: str, substitutions: Mapping[str, str] = host) -> str:
        return shell(block(block_id).command(substitutions), cwd=one_machine.checkout, env=one_machine.env).stdout

    expect_output("smoke-healthz-output", run("smoke-healthz"))
    expect_output("smoke-readyz-output", run("smoke-readyz"))

    ready = [json.loads(line) for line in run("smoke-worker-ready", {}).splitlines()]
    assert len(ready) == 1 and set(ready[0]) == {"time", "process"}  # --processes 1

    expect_output("smoke-run-output", run("smoke-run"))
    expect_output("smoke-dlq-output", run("smoke-dlq", {}))

    # A URL nothing answers at: the failure the table lists first
    closed = {"https://HOST": f"http://127.0.0.1:{free_port()}"}
    unreachable = shell(block("smoke-run").command(closed), cwd=one_machine.checkout, env=one_machine.env, check=False)
    assert unreachable.returncode == 1
    assert says(documented_failures()[0], unreachable.stdout.splitlines()[-1]), unreachable.stdout


runs("smoke-readyz-unavailable-output")


def test_readyz_and_smoke_name_a_broker_that_is_down(checkout: Path, tmp_path: Path) -> None:
    # Given the API server of the README, on a Redis nothing listens at
    down = f"redis://127.0.0.1:{free_port()}/0"
    env = exported(block("quickstart-env"), cwd=checkout, env=base_env(PREVIEW_BROKER_URL=down, DATA_DIR=str(tmp_path)))
    port = free_port()
    command = block("quickstart-api").command({"--port 8000": f"--port {port}"})
    api = Service(command, cwd=checkout, env=env, log_path=tmp_path / "api.log")
    try:
        api.wait_for(lambda: answers(f"http://127.0.0.1:{port}/api/preview/healthz"), "the API server to answer")
        host = {"https://HOST": f"http://127.0.0.1:{port}"}

        # When readyz is asked and smoke is run, as the runbook says
        readyz = shell(block("smoke-readyz").command(host), cwd=checkout, env=env)
        smoke = shell(block("smoke-run").command(host), cwd=checkout, env=env, check=False)
    finally:
        api.stop()

    # Then both answer as documented
    expect_output("smoke-readyz-unavailable-output", readyz.stdout)
    assert smoke.returncode == 1
    assert any(says(row, smoke.stdout.splitlines()[-1]) for row in documented_failures()), smoke.stdout
    assert smoke.stdout.splitlines()[-1].startswith("FAIL readyz answered 503: unavailable: broker: ")


# -- Workers, metrics and hosts -----------------------------------------------------------------

runs("workers-production")


def test_the_production_worker_command(tmp_path: Path) -> None:
    require_server("Redis", "127.0.0.1", 6379)
    substitutions = {"redis://redis.internal:6379/0": REDIS_URL, "/srv/": f"{tmp_path}/srv/"}
    worker = Service(
        block("workers-production").command(substitutions), cwd=tmp_path, env=base_env(), log_path=tmp_path / "worker.log"
    )
    try:
        worker.wait_for(lambda: worker.output.count("ready for action") >= 2, "both worker processes to start")
    finally:
        status = worker.stop()
    assert status == 0, worker.output
    assert "Traceback" not in worker.output


runs("metrics-worker", "metrics-scrape")


def test_the_metrics_commands(tmp_path: Path) -> None:
    port = free_port()
    substitutions = {"/run/preview-metrics": str(tmp_path / "run" / "preview-metrics")}
    # the mock renderer: what is tested here is the scrape, not the video
    env = base_env(PREVIEW_METRICS_PORT=str(port), DATA_DIR=str(tmp_path / "data"), PREVIEW_RENDERER="mock")
    worker = Service(block("metrics-worker").command(substitutions), cwd=tmp_path, env=env, log_path=tmp_path / "worker.log")
    scrape = block("metrics-scrape").command({"127.0.0.1:9191": f"127.0.0.1:{port}"})
    try:
        worker.wait_for(lambda: answers(f"http://127.0.0.1:{port}/metrics"), "the worker's metrics server")
        # a job done, as the README's Python snippet submits it, so that there is a count to show
        python(block("submit-python").command(), cwd=tmp_path, env=env)
        completed = 'preview_jobs_completed_total{outcome="succeeded"} 1.0'
        worker.wait_for(
            lambda: completed in shell(scrape, cwd=tmp_path, env=env, check=False).stdout, "the job to be counted"
        )
    finally:
        worker.stop()


runs("mount-app")

#: Appended to the README's mounting snippet: what it promises, asked of the app it builds.
MOUNT_CHECK = """
from starlette.testclient import TestClient

with TestClient(app) as client:
    metrics = client.get("/metrics", follow_redirects=False)
    health = client.get("/api/preview/healthz", follow_redirects=False)
print(metrics.status_code, health.status_code, "preview_jobs_submitted_total" in metrics.text)
"""


def test_mounting_the_api_in_a_host(tmp_path: Path) -> None:
    env = base_env(PREVIEW_BROKER_URL="stub://", DATA_DIR=str(tmp_path))
    printed = python(block("mount-app").command() + MOUNT_CHECK, cwd=tmp_path, env=env).stdout
    assert printed.split() == ["200", "200", "True"]
