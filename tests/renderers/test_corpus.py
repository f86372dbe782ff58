"""Keep what works: every real-world input of the corpus renders right, read back from the video.

The corpus (:mod:`corpus`) is made once for the module; its inputs are
rendered in a few chapters at once — every picture and clip a step of one
chapter, each narration a chapter of its own, each refused input a dry run
of its own, and a chapter of 100 steps of 100 ms — and each test reads back
what its input must show: colours where the picture sits as displayed, sound
and silence, a warning, or an error naming the asset by its id and uri.
Small and short (320x180, 10 fps) so the module runs in well under 90 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import corpus
import pytest
from corpus import BACKGROUND, Input, Sample
from test_ffmpeg import (
    ROOT,
    Result,
    boundaries,
    close,
    decode,
    decode_audio,
    make_spec,
    pixel,
    probe,
    render,
    renderer_env,
    rms,
)

from renderers.ffmpeg.compose import fit, plan_layout
from renderers.ffmpeg.spec import Output

OUTPUT = Output(320, 180, 10)
BACKGROUND_HEX = "#{:02x}{:02x}{:02x}".format(*BACKGROUND)
#: Loudness (RMS of full scale) above which a window is audible, and below which it is silent.
AUDIBLE_RMS = 0.05
SILENT_RMS = 0.002
#: The 108-megapixel refusal may take at most this much memory and time: the renderer's own
#: ~170 MB (Python, Pillow, fonts) and no more; decoding the image would add 324 MB.
REFUSAL_MAX_RSS_MB = 300
REFUSAL_MAX_S = 10.0

Maker = Callable[[Path, str], Input]


@dataclass
class Rendered:
    result: Result
    #: Every frame of the video, RGB24 (empty on a dry run).
    frames: list[bytes]
    #: Peak memory of the renderer, in MB, and its wall time, in seconds.
    max_rss_mb: float = 0.0
    seconds: float = 0.0


def _asset(folder: Path, item: Input) -> dict[str, Any]:
    return {"type": item.type, "path": str(folder / item.uri), "sha256": None, "uri": item.uri}


def _step(item: Input, **fields: Any) -> dict[str, Any]:
    return {"id": item.name, "durationMs": item.duration_ms, "background": BACKGROUND_HEX, **fields}


def _measured(spec: dict[str, Any], out_dir: Path, *flags: str) -> tuple[Result, float, float]:
    """Render like :func:`test_ffmpeg.render`, measuring this renderer's own peak memory (wait4) and time."""
    spec_file = out_dir.parent / f"{out_dir.name}.spec.json"
    spec_file.write_text(json.dumps(spec), encoding="utf-8")
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        started = time.monotonic()
        # Output to files and no Popen.wait: os.wait4 reaps the renderer and says how much memory it took.
        process = subprocess.Popen([sys.executable, "-m", "renderers.ffmpeg", str(spec_file), str(out_dir), *flags],
                                   cwd=ROOT, env=renderer_env(), stdout=stdout, stderr=stderr)  # fmt: skip
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - started
        stdout.seek(0)
        stderr.seek(0)
        result = Result(process.returncode, stdout.read().decode(), stderr.read().decode(), out_dir)
    return result, usage.ru_maxrss / 1024, seconds


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory, ffmpeg: str) -> tuple[Path, dict[str, Input]]:
    folder = tmp_path_factory.mktemp("corpus")
    makers = (*corpus.PICTURES, *corpus.AUDIO, *corpus.REFUSED)
    made = corpus.make_corpus(folder, ffmpeg)
    return folder, {maker.__name__: item for maker, item in zip(makers, made, strict=True)}


@pytest.fixture(scope="module")
def renders(inputs: tuple[Path, dict[str, Input]], tmp_path_factory: pytest.TempPathFactory,
            ffmpeg: str) -> dict[str, Rendered]:  # fmt: skip
    """Every render of the module, several at once: "pictures", "short-steps", and one per narration
    and refused input, by its maker's name."""
    folder, by_maker = inputs
    out = tmp_path_factory.mktemp("renders")
    jobs: dict[str, Callable[[], Rendered]] = {}
    size = (OUTPUT.width, OUTPUT.height, OUTPUT.fps)

    def video(name: str, spec: dict[str, Any]) -> Callable[[], Rendered]:
        def run() -> Rendered:
            result = render(spec, out / name)
            width, height = spec["output"]["width"], spec["output"]["height"]
            frames = decode(ffmpeg, out / name / "video.mp4", width, height) if result.returncode == 0 else []
            return Rendered(result, frames)

        return run

    pictures = [by_maker[maker.__name__] for maker in corpus.PICTURES]
    jobs["pictures"] = video("pictures", make_spec(
        [_step(item, asset=item.name) for item in pictures],
        {item.name: _asset(folder, item) for item in pictures},
        width=size[0], height=size[1], fps=size[2],
    ))  # fmt: skip
    jobs["short-steps"] = video("short-steps", make_spec(
        [{"id": f"s{n}", "durationMs": corpus.SHORT_STEP_MS, "background": _hex(_short_background(n))}
         for n in range(corpus.SHORT_STEPS)],
        width=160, height=90, fps=10,
    ))  # fmt: skip
    for maker in corpus.AUDIO:
        item = by_maker[maker.__name__]
        jobs[maker.__name__] = video(maker.__name__, make_spec(
            [_step(item)], {item.name: _asset(folder, item)}, audio={"asset": item.name},
            width=size[0], height=size[1], fps=size[2],
        ))  # fmt: skip
    for maker in corpus.REFUSED:
        item = by_maker[maker.__name__]
        spec = make_spec([_step(item, asset=item.name)], {item.name: _asset(folder, item)},
                         width=size[0], height=size[1], fps=size[2])  # fmt: skip

        def refused(spec: dict[str, Any] = spec, name: str = maker.__name__) -> Rendered:
            result, rss_mb, seconds = _measured(spec, out / name, "--dry-run")
            return Rendered(result, [], rss_mb, seconds)

        jobs[maker.__name__] = refused
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        return {name: future.result() for name, future in futures.items()}


def _short_background(n: int) -> tuple[int, int, int]:
    return corpus.SHORT_STEP_BACKGROUNDS[n % len(corpus.SHORT_STEP_BACKGROUNDS)]


def _hex(colour: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*colour)


def _where(sample: Sample, displayed: tuple[int, int]) -> tuple[int, int]:
    """The frame pixel of ``sample``: the picture fits, letterboxed, in a step's media box."""
    box = plan_layout(OUTPUT, None, None, has_media=True).media_box
    assert box is not None
    x, y, width, height = fit(displayed, box)
    column = min(OUTPUT.width - 1, max(0, round(x + sample.u * width)))
    return column, min(OUTPUT.height - 1, max(0, round(y + sample.v * height)))


@pytest.mark.parametrize("maker", corpus.PICTURES, ids=lambda maker: maker.__name__)
def test_every_picture_shows_as_displayed(
    maker: Maker, inputs: tuple[Path, dict[str, Input]], renders: dict[str, Rendered]
) -> None:
    item = inputs[1][maker.__name__]
    rendered = renders["pictures"]
    assert rendered.result.returncode == 0, rendered.result.stderr
    steps = [inputs[1][m.__name__] for m in corpus.PICTURES]
    start, frames = boundaries([step.duration_ms for step in steps], OUTPUT.fps)[steps.index(item)]
    assert len(rendered.frames) == sum(count for _, count in boundaries([s.duration_ms for s in steps], OUTPUT.fps))
    assert item.picture is not None
    seen = []
    for sample in item.picture.samples:
        index = start + round(sample.t_s * OUTPUT.fps)
        assert index < start + frames
        x, y = _where(sample, item.picture.displayed)
        expected = BACKGROUND if sample.rgb is None else sample.rgb
        actual = pixel(rendered.frames[index], OUTPUT.width, x, y)
        seen.append((sample, actual))
        assert close(actual, expected, sample.tolerance), f"{item.name} at {sample}: {actual} is not {expected}"
    warnings = [w for w in rendered.result.json("report.json")["warnings"] if w.get("step") == item.name]
    if item.warning is None:
        assert warnings == []
    else:
        assert [w["code"] for w in warnings] == [item.warning]
        assert warnings[0]["message"].startswith(f"asset '{item.name}' (uri {item.uri}): ")


@pytest.mark.parametrize("maker", corpus.AUDIO, ids=lambda maker: maker.__name__)
def test_every_narration_is_heard_for_the_chapter_exactly(
    maker: Maker, inputs: tuple[Path, dict[str, Input]], renders: dict[str, Rendered], ffmpeg: str
) -> None:
    item = inputs[1][maker.__name__]
    rendered = renders[maker.__name__]
    assert rendered.result.returncode == 0, rendered.result.stderr
    video = rendered.result.out_dir / "video.mp4"
    info = probe(ffmpeg, video)
    assert info.audio is not None and "48000 Hz" in info.audio
    assert ("stereo" if item.name == "surround-5.1" else "mono") in info.audio  # mono stays mono; more: downmixed
    assert abs(info.duration_s - item.duration_ms / 1000) <= 0.06, info.duration_s  # not the narration's length
    assert len(rendered.frames) == item.duration_ms * OUTPUT.fps // 1000
    samples = decode_audio(ffmpeg, video)
    assert abs(len(samples) / 48_000 - item.duration_ms / 1000) <= 0.05
    assert item.sound is not None
    for start, end in item.sound.audible:
        level = rms(samples, int(start * 48_000), int(end * 48_000))
        assert level > AUDIBLE_RMS, f"{item.name}: {start}-{end} s is silent ({level:.4f})"
    for start, end in item.sound.silent:
        level = rms(samples, int(start * 48_000), int(end * 48_000))
        assert level < SILENT_RMS, f"{item.name}: {start}-{end} s is not silent ({level:.4f})"


@pytest.mark.parametrize("maker", corpus.REFUSED, ids=lambda maker: maker.__name__)
def test_every_bad_input_is_refused_naming_the_asset(
    maker: Maker, inputs: tuple[Path, dict[str, Input]], renders: dict[str, Rendered]
) -> None:
    folder, by_maker = inputs
    item = by_maker[maker.__name__]
    rendered = renders[maker.__name__]
    assert rendered.result.returncode == 2, rendered.result.stderr
    assert f"asset '{item.name}' (uri {item.uri}): " in rendered.result.stderr
    assert item.refusal is not None and item.refusal in rendered.result.stderr
    assert str(folder) not in rendered.result.stderr
    if "no decode" in item.notes:
        assert rendered.max_rss_mb < REFUSAL_MAX_RSS_MB, f"{rendered.max_rss_mb:.0f} MB: the image was decoded"
        assert rendered.seconds < REFUSAL_MAX_S


def test_a_hundred_steps_of_100_ms_each_show_their_background(renders: dict[str, Rendered], ffmpeg: str) -> None:
    rendered = renders["short-steps"]
    assert rendered.result.returncode == 0, rendered.result.stderr
    assert abs(probe(ffmpeg, rendered.result.out_dir / "video.mp4").duration_s - 10.0) <= 0.06
    assert len(rendered.frames) == corpus.SHORT_STEPS  # one frame each at 10 fps
    for n, frame in enumerate(rendered.frames):
        actual = pixel(frame, 160, 80, 45)
        assert close(actual, _short_background(n), corpus.TOLERANCE), f"step {n}: {actual}"
    assert [segment["step"] for segment in rendered.result.json("report.json")["segments"]] == [
        f"s{n}" for n in range(corpus.SHORT_STEPS)
    ]
