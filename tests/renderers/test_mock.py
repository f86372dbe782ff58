"""The mock renderer: its outputs, and a start-up kept light with public modules only."""

from __future__ import annotations

import ast
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import renderers.mock as mock

REPO = Path(__file__).resolve().parents[2]


def run_mock(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "renderers.mock", *args], cwd=REPO, capture_output=True, text=True, env=env, timeout=30
    )


def write_spec(tmp_path: Path, **changes: object) -> Path:
    image = tmp_path / "cover.png"
    image.write_bytes(b"\x89PNG not really")
    spec = {
        "specVersion": 1,
        "jobId": "job",
        "chapterId": "chapter",
        "output": {"width": 640, "height": 360, "fps": 24},
        "steps": [
            {"id": "intro", "durationMs": 1500, "title": "Très bien", "text": None, "asset": "cover", "background": "#102030"},
            {"id": "outro", "durationMs": 500, "title": None, "text": "مرحبا", "asset": None, "background": "#000000"},
        ],
        "assets": {"cover": {"type": "image", "path": str(image), "sha256": None}},
        "audio": None,
        "cacheDir": None,
        **changes,
    }
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec, indent=2), encoding="utf-8")
    return path


def test_a_render_writes_every_output_derived_from_the_spec(tmp_path: Path) -> None:
    spec_path = write_spec(tmp_path)
    result = run_mock(str(spec_path), str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["progress=0.250", "progress=0.500", "progress=0.750", "progress=1.000"]
    out = tmp_path / "out"
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    identity = json.dumps({"output": spec["output"], "steps": spec["steps"], "audio": spec["audio"]}, sort_keys=True).encode()
    assert (out / "video.mp4").read_bytes() == b"MOCKMP4\n" + identity + b"\n" + hashlib.sha256(identity).digest() * 64
    assert (out / "poster.jpg").read_bytes()[:2] == b"\xff\xd8"
    plan = json.loads((out / "plan.json").read_text(encoding="utf-8"))
    assert plan["durationMs"] == 2000 and [entry["startMs"] for entry in plan["timeline"]] == [0, 1500]
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["renderer"] == "mock" and report["dryRun"] is False
    assert [segment["step"] for segment in report["segments"]] == ["intro", "outro"]


def test_a_dry_run_writes_no_video(tmp_path: Path) -> None:
    result = run_mock(str(write_spec(tmp_path)), str(tmp_path / "out"), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["plan.json", "poster.jpg", "report.json"]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "does not exist"),
        ("{not json", "is unreadable"),
        ("[1, 2]", "must be a JSON object"),
        ('{"specVersion": 9, "output": {}, "steps": [], "assets": {}}', "unsupported specVersion 9"),
    ],
)
def test_bad_specs_exit_2_naming_the_problem(tmp_path: Path, content: str | None, fragment: str) -> None:
    spec_path = tmp_path / "spec.json"
    if content is not None:
        spec_path.write_text(content, encoding="utf-8")
    result = run_mock(str(spec_path), str(tmp_path / "out"))
    assert result.returncode == 2
    assert fragment in result.stderr


def test_a_missing_asset_is_bad_input(tmp_path: Path) -> None:
    spec_path = write_spec(tmp_path, assets={"cover": {"type": "image", "path": str(tmp_path / "gone.png"), "sha256": None}})
    result = run_mock(str(spec_path), str(tmp_path / "out"))
    assert result.returncode == 2 and "asset 'cover'" in result.stderr


def test_it_imports_no_private_module() -> None:
    # Given the source of the mock and of the protocol module it is built on
    sources = [*Path(mock.__file__).parent.glob("*.py"), Path(mock.__file__).parent.parent / "protocol.py"]
    private = []
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            # Then no import names a private module (an implementation detail such as _json or _sha256)
            private += [
                f"{source.name}: {name}"
                for name in names
                if any(part.startswith("_") for part in name.split(".")) and name != "__future__"
            ]
    assert private == []


# The time this start-up takes is measured, as a ratio to `python -c pass`, by `python -m bench.mock_startup`.
HEAVY_MODULES = {"json", "re", "typing", "pathlib", "hashlib", "base64", "binascii", "ctypes", "signal", "enum"}


@pytest.mark.parametrize("module", ["renderers.mock", "renderers.protocol"])
def test_importing_it_loads_nothing_heavy(module: str) -> None:
    # Given the module imported in a fresh interpreter, as `python -m renderers.mock` does first
    code = f"import sys, {module}; print(','.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    loaded = set(result.stdout.strip().split(","))
    # Then the protocol is there (the mock has no copy of its own) and none of the modules that made
    # up most of the start-up are: the functions that need them import them
    assert "renderers.protocol" in loaded
    assert loaded & HEAVY_MODULES == set()
