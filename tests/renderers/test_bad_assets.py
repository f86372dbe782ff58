"""Bad assets are bad input: named by their id and the request's ``uri``, never by a server path.

A missing, empty, truncated or undecodable asset makes the renderer exit 2, the
job fail at once (no retry) with ``error.code`` ``bad_input``, and
``preview-worker render`` exit 2. No error a client can read — the status, the
CLI's output — holds a path of the server: the asset root, DATA_DIR. A clip
cut short (a faststart MP4 cut in half) renders what can be decoded, with a
``truncated_asset`` warning in ``report.json`` saying how much that was.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, chapter_request, running_worker, wait_for_state
from corpus import mdat_offset
from PIL import Image
from test_ffmpeg import asset, decode, make_spec, pixel, render, renderer_env

from preview_actors import submit_preview
from preview_actors.runtime import Runtime
from preview_actors.store import JobState
from renderers.ffmpeg import truncation

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

#: A folder name no message has any business containing.
SERVER_DIR = "srv-private-7f3a"


def _clip(ffmpeg: str, path: Path, seconds: float, *extra: str, size: str = "160x90", fps: int = 10) -> Path:
    """A clip whose every frame is a flat colour of its own (frame n: red 20+20n mod 256)."""
    source = f"color=c=black:size={size}:rate={fps}:duration={seconds},format=gbrp,geq=r='mod(20+N*20,256)':g=64:b=128"
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", source,
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", *extra, str(path)],
        check=True,
    )  # fmt: skip
    return path


def _cut_in_half(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _make(case: str, folder: Path, ffmpeg: str) -> tuple[str, str, Path]:
    """(asset type, file name, path) of a bad asset of kind ``case``, made in ``folder``."""
    if case == "missing":
        return "image", "cover.png", folder / "cover.png"
    if case == "empty":
        (folder / "cover.png").write_bytes(b"")
        return "image", "cover.png", folder / "cover.png"
    if case == "truncated image":
        Image.effect_noise((200, 200), 60).convert("RGB").save(folder / "cover.png")
        return "image", "cover.png", _cut_in_half(folder / "cover.png")
    if case == "undecodable image":
        (folder / "cover.png").write_bytes(bytes(range(256)) * 8)
        return "image", "cover.png", folder / "cover.png"
    if case == "truncated clip":  # moov at the end: the header itself is gone
        return "video", "demo.mp4", _cut_in_half(_clip(ffmpeg, folder / "demo.mp4", 2.0))
    if case == "clip cut inside its first frame":  # its header is whole: it probes fine
        path = _clip(ffmpeg, folder / "demo.mp4", 2.0, "-movflags", "+faststart")
        data = path.read_bytes()
        path.write_bytes(data[: mdat_offset(data) + 16])
        return "video", "demo.mp4", path
    if case == "undecodable clip":
        (folder / "demo.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
        return "video", "demo.mp4", folder / "demo.mp4"
    if case == "audio without sound":
        Image.new("RGB", (8, 8)).save(folder / "narration.png")
        return "audio", "narration.png", folder / "narration.png"
    raise ValueError(case)


BAD_CASES = [
    ("missing", "not found"),
    ("empty", "empty"),
    ("truncated image", "not a decodable image"),
    ("undecodable image", "not a decodable image"),
    ("truncated clip", "not a decodable video"),
    ("clip cut inside its first frame", "none of its frames can be read"),
    ("undecodable clip", "not a decodable video"),
    ("audio without sound", "no audio stream"),
]


# -- the renderer ----------------------------------------------------------------


@pytest.mark.parametrize("case, words", BAD_CASES, ids=[case for case, _ in BAD_CASES])
def test_the_renderer_names_a_bad_asset_by_id_and_uri_never_by_path(
    tmp_path: Path, ffmpeg: str, case: str, words: str
) -> None:
    # Given an asset below a server folder, the spec carrying the request's uri
    folder = tmp_path / SERVER_DIR / "media"
    folder.mkdir(parents=True)
    kind, name, path = _make(case, folder, ffmpeg)
    uri = f"media/{name}"
    spec = make_spec(
        [{"id": "intro", "durationMs": 500, "asset": "x" if kind != "audio" else None}],
        {"x": {**asset(kind, path), "uri": uri}},
        audio={"asset": "x"} if kind == "audio" else None,
    )

    # When it is rendered
    result = render(spec, tmp_path / "out")

    # Then it is bad input, named by id and uri, with no trace of the server's folder
    assert result.returncode == 2, result.stderr
    assert f"asset 'x' (uri {uri}): " in result.stderr and words in result.stderr, result.stderr
    assert SERVER_DIR not in result.stderr


def test_without_a_uri_the_renderer_names_the_file_it_was_given(tmp_path: Path) -> None:
    """A renderer run by hand, on a spec without ``uri``s, names what it was given: the path."""
    spec = make_spec([{"id": "intro", "durationMs": 500, "asset": "x"}], {"x": asset("image", tmp_path / "gone.png")})

    result = render(spec, tmp_path / "out")

    assert result.returncode == 2
    assert f"asset 'x' ({tmp_path / 'gone.png'}): file not found" in result.stderr


def test_the_mock_renderer_names_a_missing_asset_by_its_uri(tmp_path: Path) -> None:
    spec = make_spec([{"id": "intro", "durationMs": 500}],
                     {"x": {**asset("image", tmp_path / SERVER_DIR / "cover.png"), "uri": "images/cover.png"}})
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(spec))

    result = subprocess.run([sys.executable, "-m", "renderers.mock", str(spec_file), str(tmp_path / "out")],
                            cwd=REPO, env=renderer_env(), capture_output=True, text=True, timeout=60)

    assert result.returncode == 2
    assert "asset 'x' (uri images/cover.png): file not found" in result.stderr
    assert SERVER_DIR not in result.stderr


# -- a clip cut short ------------------------------------------------------------


def _red(frame: bytes, width: int, height: int) -> int:
    return pixel(frame, width, width // 2, height // 2)[0]


def test_a_faststart_clip_cut_in_half_renders_its_readable_part_with_a_warning(tmp_path: Path, ffmpeg: str) -> None:
    # Given a 4 s faststart MP4 (its header first) of which only the first half of the bytes is left
    clip = _cut_in_half(_clip(ffmpeg, tmp_path / "demo.mp4", 4.0, "-movflags", "+faststart"))
    spec = make_spec(
        [{"id": "demo", "durationMs": 4000, "asset": "clip"}],
        {"clip": {**asset("video", clip), "uri": "video/demo.mp4"}},
        width=160, height=90, fps=10,
    )

    # When it is rendered
    result = render(spec, tmp_path / "out")

    # Then it renders, and report.json says how much of it could be decoded
    assert result.returncode == 0, result.stderr
    warnings_ = result.json("report.json")["warnings"]
    assert len(warnings_) == 1, warnings_
    warning = warnings_[0]
    assert (warning["code"], warning["step"]) == ("truncated_asset", "demo")
    match = re.fullmatch(
        r"asset 'clip' \(uri video/demo\.mp4\): only (\d+\.\d) s of the 4\.0 s its header declares could be decoded",
        warning["message"],
    )
    assert match, warning["message"]
    decodable_s = float(match.group(1))
    assert 1.0 <= decodable_s <= 3.0
    # …and the video shows the readable frames, then holds the last one
    frames = decode(ffmpeg, tmp_path / "out" / "video.mp4", 160, 90)
    assert len(frames) == 40
    reds = [_red(frame, 160, 90) for frame in frames]
    assert abs(reds[5] - (20 + 5 * 20)) <= 8  # clip frame 5, mid-fade-free
    last = int(decodable_s * 10) - 1
    held = reds[last + 2 : 36]  # after the readable part, before the fade-out
    assert held and max(held) - min(held) <= 4, reds


def test_a_whole_clip_and_a_clip_shown_shorter_than_its_readable_part_warn_nothing(tmp_path: Path, ffmpeg: str) -> None:
    whole = _clip(ffmpeg, tmp_path / "whole.mp4", 2.0, "-movflags", "+faststart")
    cut = _cut_in_half(_clip(ffmpeg, tmp_path / "cut.mp4", 4.0, "-movflags", "+faststart"))
    spec = make_spec(
        [{"id": "whole", "durationMs": 3000, "asset": "whole"}, {"id": "cut", "durationMs": 500, "asset": "cut"}],
        {"whole": {**asset("video", whole), "uri": "whole.mp4"}, "cut": {**asset("video", cut), "uri": "cut.mp4"}},
    )

    for flags in ((), ("--dry-run",)):
        result = render(spec, tmp_path / f"out{len(flags)}", *flags)
        assert result.returncode == 0, result.stderr
        assert result.json("report.json")["warnings"] == []


def test_a_dry_run_warns_of_a_clip_cut_short_too(tmp_path: Path, ffmpeg: str) -> None:
    clip = _cut_in_half(_clip(ffmpeg, tmp_path / "demo.mp4", 4.0, "-movflags", "+faststart"))
    spec = make_spec([{"id": "demo", "durationMs": 4000, "asset": "clip"}],
                     {"clip": {**asset("video", clip), "uri": "video/demo.mp4"}})

    result = render(spec, tmp_path / "out", "--dry-run")

    assert result.returncode == 0, result.stderr
    assert [w["code"] for w in result.json("report.json")["warnings"]] == ["truncated_asset"]


def test_packet_spans_count_only_packets_that_show() -> None:
    framecrc = (
        "#tb 0: 1/10240\n#media_type 0: video\n#tb 1: 1/1000\n"
        "0,      -2048,      -2048,     1024,      600, 0x1, F=0x5\n"  # key, discarded (an edit list's pre-roll)
        "0,          0,          0,     1024,      600, 0x2\n"
        "1,          0, -9223372036854775808,  100,   20, 0x3\n"  # no pts: its dts counts
        "0,       1024,       1024,     1024,      110, 0x4, F=0x0\n"
        "0,       2048,       2048,     1024,       49, 0x5, F=0x2\n"  # cut through: corrupt
        "1,        100,        100,      100,       20, 0x6, S=1, 8\n"
    )

    assert truncation.packet_spans(framecrc) == {0: Fraction(2048, 10240), 1: Fraction(200, 1000)}


# -- the job, its status and the command line ---------------------------------------------


def _chapter_with_cover(uri: str = "images/cover.png") -> dict[str, Any]:
    body = chapter_request()
    body["previewRequest"]["assets"] = [{"id": "cover", "type": "image", "uri": uri}]
    body["previewRequest"]["steps"][0]["asset"] = "cover"
    return body


def _server_paths(runtime: Runtime) -> list[str]:
    return [str(runtime.settings.asset_root), str(runtime.settings.data_dir)]


def test_an_empty_asset_fails_the_job_at_once_and_its_status_names_the_uri_not_a_path(
    runtime_factory: Callable[..., Runtime],
) -> None:
    from preview_api import create_app

    runtime = runtime_factory("stub", renderer="ffmpeg")
    (runtime.settings.asset_root / "images").mkdir()
    (runtime.settings.asset_root / "images" / "cover.png").write_bytes(b"")

    with running_worker(runtime, threads=1):
        job_id = submit_preview(_chapter_with_cover()).record.job_id
        record = wait_for_state(runtime, job_id, JobState.FAILED, JobState.SUCCEEDED)

    assert record.state is JobState.FAILED and record.attempts == 1
    assert record.error["code"] == "bad_input" and record.error["retryable"] is False
    assert "asset 'cover' (uri images/cover.png): " in record.error["message"]
    assert "empty" in record.error["message"]
    with TestClient(create_app()) as client:
        status = client.get(f"/{job_id}/status")
    assert status.status_code == 200
    assert status.json()["error"]["message"] == record.error["message"]
    for path in _server_paths(runtime):
        assert path not in status.text


def test_a_job_with_a_clip_cut_in_half_succeeds_and_its_status_warns(
    runtime_factory: Callable[..., Runtime], ffmpeg: str
) -> None:
    from preview_api import create_app

    runtime = runtime_factory("stub", renderer="ffmpeg")
    (runtime.settings.asset_root / "video").mkdir()
    _cut_in_half(_clip(ffmpeg, runtime.settings.asset_root / "video" / "demo.mp4", 4.0, "-movflags", "+faststart"))
    body = chapter_request(steps=1)
    body["previewRequest"]["steps"][0].update(asset="clip", durationMs=4000)
    body["previewRequest"]["assets"] = [{"id": "clip", "type": "video", "uri": "video/demo.mp4"}]

    with running_worker(runtime, threads=1):
        job_id = submit_preview(body).record.job_id
        record = wait_for_state(runtime, job_id, JobState.SUCCEEDED, JobState.FAILED)

    assert record.state is JobState.SUCCEEDED, record.error
    with TestClient(create_app()) as client:
        status = client.get(f"/{job_id}/status")
    warnings_ = status.json()["warnings"]
    assert [(w["code"], w["step"]) for w in warnings_] == [("truncated_asset", "step-0")]
    assert warnings_[0]["message"].startswith("asset 'clip' (uri video/demo.mp4): only ")
    for path in _server_paths(runtime):
        assert path not in status.text


def test_an_asset_missing_below_the_root_is_bad_input(runtime_factory: Callable[..., Runtime]) -> None:
    runtime = runtime_factory("stub")

    with running_worker(runtime, threads=1):
        job_id = submit_preview(_chapter_with_cover("images/missing.png")).record.job_id
        record = wait_for_state(runtime, job_id, JobState.FAILED, JobState.SUCCEEDED)

    assert record.error["code"] == "bad_input" and record.attempts == 1
    assert "asset 'cover' (uri images/missing.png): does not exist below PREVIEW_ASSET_ROOT" in record.error["message"]


def test_server_paths_in_any_stage_error_are_shown_relative(
    runtime_factory: Callable[..., Runtime], tmp_path: Path
) -> None:
    """The last line of defence: a renderer's own words, naming its files, reach the status without DATA_DIR."""
    script = tmp_path / "renderer.py"
    script.write_text(
        "import sys\n"
        "print(f'cannot write {sys.argv[2]}/video.mp4 (spec {sys.argv[1]})', file=sys.stderr)\n"
        "sys.exit(3)\n"
    )
    runtime = runtime_factory("stub", renderer=f"{sys.executable} {script}", max_retries=0)

    with running_worker(runtime, threads=1):
        job_id = submit_preview(chapter_request()).record.job_id
        record = wait_for_state(runtime, job_id, JobState.FAILED, JobState.SUCCEEDED)

    message = record.error["message"]
    assert f"cannot write jobs/{job_id}/attempts/1/out/video.mp4 (spec jobs/{job_id}/attempts/1/spec.json)" in message
    assert str(runtime.settings.data_dir) not in message
    assert record.error["code"] == "retries_exhausted"


def _run_cli(tmp_path: Path, chapter: dict[str, Any], *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "chapter.json"
    path.write_text(json.dumps(chapter))
    environment = {name: value for name, value in os.environ.items() if not name.startswith(("PREVIEW_", "DATA_DIR"))}
    environment.update({"DATA_DIR": str(tmp_path / "data"), "PREVIEW_RENDERER": "mock", **env})
    return subprocess.run([sys.executable, "-m", "preview_worker", "render", str(path), *args],
                          env=environment, cwd=REPO, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("renderer", ["ffmpeg", "mock"])
def test_the_cli_exits_2_for_a_bad_asset_naming_its_uri(tmp_path: Path, renderer: str) -> None:
    # ffmpeg: the renderer finds the file empty; mock: the worker finds none below the root
    root = tmp_path / SERVER_DIR
    (root / "images").mkdir(parents=True)
    if renderer == "ffmpeg":
        (root / "images" / "cover.png").write_bytes(b"")

    result = _run_cli(tmp_path, _chapter_with_cover(), "--json", "--asset-root", str(root), PREVIEW_RENDERER=renderer)

    assert result.returncode == 2, result.stderr
    output = json.loads(result.stdout)
    assert output["state"] == "failed" and output["error"]["code"] == "bad_input"
    assert "asset 'cover' (uri images/cover.png): " in output["error"]["message"]
    assert SERVER_DIR not in result.stdout


def test_the_cli_exits_1_when_a_job_fails_for_another_reason(tmp_path: Path) -> None:
    result = _run_cli(tmp_path, chapter_request(), PREVIEW_MOCK_EXIT_CODE="3", PREVIEW_MAX_RETRIES="0")

    assert result.returncode == 1, result.stderr
    assert "failed" in result.stderr and "exit code 3" in result.stderr
