"""The renderer protocol has one home, and what it sets up makes renderers and their children die with their parent."""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import wait_until

import preview_actors.renderer
import renderers
from renderers import protocol

REPO = Path(__file__).resolve().parents[2]

#: Names only renderers/protocol.py may define.
PROTOCOL_NAMES = {
    "EXIT_OK", "EXIT_FAILURE", "EXIT_BAD_INPUT", "SPEC_VERSION", "VIDEO_FILE", "POSTER_FILE", "PLAN_FILE", "REPORT_FILE",
    "_PR_SET_PDEATHSIG", "PR_SET_PDEATHSIG", "_SIGKILL",
}  # fmt: skip

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")


def protocol_users() -> Iterator[Path]:
    """The renderers' modules (the protocol module aside) and the worker's side of the protocol."""
    for source in sorted(Path(renderers.__file__).parent.rglob("*.py")):
        if source != Path(protocol.__file__):
            yield source
    yield Path(preview_actors.renderer.__file__)


def test_the_protocol_and_the_parent_death_signal_are_defined_once() -> None:
    # Given the modules that speak the protocol, but renderers/protocol.py
    copies = []
    for source in protocol_users():
        text = source.read_text(encoding="utf-8")
        for node in ast.parse(text).body:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
            # Then none defines a constant of the protocol…
            copies += [f"{source.name}: {t.id}" for t in targets if isinstance(t, ast.Name) and t.id in PROTOCOL_NAMES]
        # …nor calls prctl itself: the parent-death signal is set up by protocol.die_with_parent(_preexec)
        if "prctl(" in text:
            copies.append(f"{source.name}: prctl")
    assert copies == []


def orphan_after_parent_killed(tmp_path: Path, body: str) -> int:
    """Run ``body`` in a parent process that prints a child's pid, SIGKILL that parent; return the child's pid."""
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(body), encoding="utf-8")
    parent = subprocess.Popen([sys.executable, str(script)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
    finally:
        parent.kill()
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()
    return child


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1]
    except OSError:
        return False
    return state != "Z"


def kill_if_alive(pid: int) -> None:
    if alive(pid):
        os.kill(pid, signal.SIGKILL)


@linux_only
def test_a_built_in_renderer_dies_with_the_worker_that_started_it(tmp_path: Path) -> None:
    # Given a mock renderer that hangs, started without a preexec_fn (as the render stage starts the built-in ones)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"specVersion": 1, "output": {}, "steps": [], "assets": {}}), encoding="utf-8")
    trace = tmp_path / "trace"
    mock = orphan_after_parent_killed(
        tmp_path,
        f"""
        import os, subprocess, sys, time
        env = dict(os.environ, PREVIEW_MOCK_HANG="1", PREVIEW_MOCK_TRACE_FILE={str(trace)!r})
        child = subprocess.Popen([sys.executable, "-m", "renderers.mock", {str(spec)!r}, {str(tmp_path / "out")!r}],
                                 env=env, stdout=subprocess.DEVNULL)
        while not os.path.exists({str(trace)!r}):  # "start" is traced after die_with_parent()
            time.sleep(0.01)
        print(child.pid, flush=True)
        time.sleep(1000)
        """,
    )
    try:
        # When its parent is SIGKILLed (above), then the renderer dies too
        wait_until(lambda: not alive(mock), timeout_s=10, what="the orphaned mock renderer to die")
    finally:
        kill_if_alive(mock)


@linux_only
def test_a_child_started_with_the_preexec_dies_with_its_parent(tmp_path: Path) -> None:
    # Given a child started with protocol.die_with_parent_preexec() (custom renderers, ffmpeg's children)
    sleeper = orphan_after_parent_killed(
        tmp_path,
        """
        import subprocess, time
        from renderers import protocol
        child = subprocess.Popen(["sleep", "1000"], preexec_fn=protocol.die_with_parent_preexec())
        print(child.pid, flush=True)
        time.sleep(1000)
        """,
    )
    try:
        # When its parent is SIGKILLed (above), then the child dies too
        wait_until(lambda: not alive(sleeper), timeout_s=10, what="the orphaned child to die")
    finally:
        kill_if_alive(sleeper)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [(["spec.json", "out"], ("spec.json", "out", False)), (["--dry-run", "spec.json", "out"], ("spec.json", "out", True))],
)
def test_parse_argv_takes_two_paths_and_a_dry_run_flag(argv: list[str], expected: tuple[str, str, bool]) -> None:
    assert protocol.parse_argv(argv) == expected


@pytest.mark.parametrize("argv", [[], ["spec.json"], ["spec.json", "out", "extra"], ["spec.json", "--fast"]])
def test_parse_argv_refuses_anything_else_with_exit_code_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        protocol.parse_argv(argv)
    assert exited.value.code == protocol.EXIT_BAD_INPUT
    assert "usage: RENDERER SPEC.json OUT_DIR [--dry-run]" in capsys.readouterr().err


def test_json_is_written_whole_or_not_at_all(tmp_path: Path) -> None:
    # Given a JSON file already there
    target = tmp_path / "report.json"
    protocol.write_json_atomically(target, {"b": 1, "a": [1, 2]})
    assert target.read_text(encoding="utf-8") == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1\n}'
    # When a value JSON cannot hold is written over it, then it raises and the old file stays
    with pytest.raises(TypeError):
        protocol.write_json_atomically(target, {"a": object()}, indent=None)
    assert json.loads(target.read_text(encoding="utf-8")) == {"a": [1, 2], "b": 1}
    protocol.write_json_atomically(str(target), {"b": 1, "a": None}, indent=None)
    assert target.read_text(encoding="utf-8") == '{"a": null, "b": 1}'
