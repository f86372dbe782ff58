"""The render stage's handling of the renderer process: timeouts, exit codes, logs, environment."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from conftest import wait_until

from preview_actors.errors import PermanentJobError, TransientJobError
from preview_actors.renderer import renderer_environment, run_renderer


def script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "renderer.py"
    path.write_text(textwrap.dedent(body))
    return [sys.executable, str(path)]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1]
    except OSError:
        return False
    return state != "Z"


def test_success_reports_progress_and_logs_both_streams(tmp_path: Path) -> None:
    command = script(
        tmp_path,
        """
        import sys
        for p in (0.25, 0.5, 1.0):
            print(f"progress={p}", flush=True)
        print("working on it", file=sys.stderr, flush=True)
        print("done")
        """,
    )
    seen: list[float] = []
    log = tmp_path / "attempt-1.log"

    result = run_renderer(command, log_path=log, timeout_s=30, on_progress=seen.append)

    assert result.exit_code == 0
    assert seen == [0.25, 0.5, 1.0]
    text = log.read_text()
    assert "[stderr] working on it" in text and "[stdout] done" in text and "[stdout] progress=0.5" in text
    assert "# renderer exited with 0" in text


def test_output_reaches_the_log_while_the_renderer_runs(tmp_path: Path) -> None:
    release = tmp_path / "release"
    command = script(
        tmp_path,
        f"""
        import os, sys, time
        print("first line", flush=True)
        while not os.path.exists({str(release)!r}):
            time.sleep(0.01)
        """,
    )
    log = tmp_path / "attempt-1.log"
    runner = threading.Thread(target=run_renderer, args=(command,), kwargs={"log_path": log, "timeout_s": 30})
    runner.start()
    try:
        wait_until(lambda: log.exists() and "first line" in log.read_text(), what="the first line in the log")
    finally:
        release.touch()
        runner.join()


@pytest.mark.parametrize(
    ("code", "error", "fragment"),
    [
        ("raise SystemExit(2)", PermanentJobError, "refused the input (exit code 2)"),
        ("raise SystemExit(3)", TransientJobError, "failed with exit code 3"),
        ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", TransientJobError, "killed by SIGKILL"),
        ("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", TransientJobError, "killed by SIGSEGV"),
    ],
)
def test_exit_codes_are_classified_with_the_stderr_tail(tmp_path: Path, code: str, error: type, fragment: str) -> None:
    command = script(tmp_path, f"import sys\nprint('asset cover: broken', file=sys.stderr, flush=True)\n{code}\n")

    with pytest.raises(error) as raised:
        run_renderer(command, log_path=tmp_path / "log", timeout_s=30)

    assert fragment in str(raised.value)
    assert "asset cover: broken" in str(raised.value)


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    command = script(
        tmp_path,
        f"""
        import subprocess, time
        child = subprocess.Popen(["sleep", "1000"])
        open({str(pid_file)!r}, "w").write(str(child.pid))
        print("spawned", flush=True)
        time.sleep(1000)
        """,
    )

    with pytest.raises(TransientJobError, match="timed out after 2s"):
        run_renderer(command, log_path=tmp_path / "log", timeout_s=2)

    grandchild = int(pid_file.read_text())
    wait_until(lambda: not alive(grandchild), timeout_s=10, what="the renderer's child to die")


def test_renderer_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    command = script(
        tmp_path,
        """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("stubborn", flush=True)
        time.sleep(1000)
        """,
    )
    with pytest.raises(TransientJobError, match="timed out"):
        run_renderer(command, log_path=tmp_path / "log", timeout_s=1)


def test_missing_renderer_program_is_permanent(tmp_path: Path) -> None:
    with pytest.raises(PermanentJobError, match="cannot be started"):
        run_renderer([str(tmp_path / "nope")], log_path=tmp_path / "log", timeout_s=5)


def test_renderer_sees_no_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {
        "PREVIEW_API_TOKEN": "canary-token-1",
        "PREVIEW_SIGNING_KEY": "canary-key-2",
        "PREVIEW_BROKER_URL": "redis://:canary-password-3@127.0.0.1:6379/0",
        "PREVIEW_STORE_URL": "redis://:canary-password-4@127.0.0.1:6379/0",
        "AWS_SECRET_ACCESS_KEY": "canary-5",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PREVIEW_MOCK_DELAY_MS", "5")
    dump = tmp_path / "env.json"
    command = script(tmp_path, f"import json, os\njson.dump(dict(os.environ), open({str(dump)!r}, 'w'))\n")

    run_renderer(command, log_path=tmp_path / "log", timeout_s=30)

    seen = json.loads(dump.read_text())
    assert not set(secrets) & set(seen)
    assert not any("canary" in value for value in seen.values())
    assert seen["PATH"] == os.environ["PATH"]
    assert seen["PREVIEW_MOCK_DELAY_MS"] == "5"
    assert set(renderer_environment({"LC_ALL": "C", "SECRET": "x"})) == {"LC_ALL"}
