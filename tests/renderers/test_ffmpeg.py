"""The ffmpeg renderer, end to end: real renders of small chapters, read back.

Every test runs ``python -m renderers.ffmpeg`` as the render stage would, on
assets made on the spot, and checks the outputs by decoding them with ffmpeg
(frames as raw RGB24, audio as raw PCM). Outputs are small (320x180, 10-15
fps, steps of 0.5-2 s) so the whole file runs in well under a minute.
"""

from __future__ import annotations

import array
import copy
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_until
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]

#: RGB distance tolerated between a requested colour and a decoded pixel.
TOLERANCE = 8


def renderer_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(overrides)
    return env


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    out_dir: Path

    @property
    def progress(self) -> list[float]:
        return [float(m) for m in re.findall(r"^progress=([0-9.]+)$", self.stdout, re.MULTILINE)]

    def json(self, name: str) -> Any:
        return json.loads((self.out_dir / name).read_text(encoding="utf-8"))


def render(spec: dict[str, Any] | str, out_dir: Path, *flags: str, env: dict[str, str] | None = None) -> Result:
    """Run the renderer on ``spec`` (a dict, or raw text for broken specs)."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    spec_file = out_dir.parent / f"{out_dir.name}.spec.json"
    spec_file.write_text(spec if isinstance(spec, str) else json.dumps(spec), encoding="utf-8")
    completed = subprocess.run(
        [sys.executable, "-m", "renderers.ffmpeg", str(spec_file), str(out_dir), *flags],
        cwd=ROOT,
        env=env or renderer_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    return Result(completed.returncode, completed.stdout, completed.stderr, out_dir)


def make_spec(steps: list[dict[str, Any]], assets: dict[str, Any] | None = None, *, width: int = 320,
              height: int = 180, fps: int = 10, audio: dict[str, Any] | None = None,
              cache_dir: Path | None = None) -> dict[str, Any]:
    return {
        "specVersion": 1,
        "jobId": "job-1",
        "chapterId": "chapter-1",
        "output": {"width": width, "height": height, "fps": fps},
        "steps": [
            {"title": None, "text": None, "asset": None, "background": "#000000", **step}
            for step in steps
        ],
        "assets": assets or {},
        "audio": audio,
        "cacheDir": str(cache_dir) if cache_dir is not None else None,
    }


def asset(kind: str, path: Path) -> dict[str, Any]:
    return {"type": kind, "path": str(path), "sha256": None}


# -- making assets -----------------------------------------------------------

def make_image(path: Path, size: tuple[int, int], colour: tuple[int, int, int]) -> Path:
    Image.new("RGB", size, colour).save(path)
    return path


def make_clip(ffmpeg: str, path: Path, seconds: float, size: str = "160x120", fps: int = 10) -> Path:
    """A clip whose frames all differ: each is a flat colour of its own."""
    source = (f"color=c=black:size={size}:rate={fps}:duration={seconds},"
              "format=gbrp,geq=r='mod(N*37,256)':g='mod(N*91,256)':b=128")
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", source,
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )
    return path


def make_tone(ffmpeg: str, path: Path, seconds: float) -> Path:
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
         "-i", f"sine=frequency=440:duration={seconds}", str(path)],
        check=True,
    )
    return path


# -- reading results back --------------------------------------------------

@dataclass
class Probe:
    duration_s: float
    video: str
    audio: str | None
    width: int
    height: int
    fps: float


def probe(ffmpeg: str, video: Path) -> Probe:
    text = subprocess.run([ffmpeg, "-hide_banner", "-i", str(video)], capture_output=True, text=True).stderr
    hours, minutes, seconds = re.search(r"Duration: (\d+):(\d+):([\d.]+)", text).groups()
    video_line = re.search(r"Stream #0:\d+.*?: Video: (.*)", text).group(1)
    audio_match = re.search(r"Stream #0:\d+.*?: Audio: (.*)", text)
    width, height = map(int, re.search(r", (\d+)x(\d+)", video_line).groups())
    fps = float(re.search(r", ([\d.]+) fps", video_line).group(1))
    return Probe(int(hours) * 3600 + int(minutes) * 60 + float(seconds), video_line,
                 audio_match.group(1) if audio_match else None, width, height, fps)


def decode(ffmpeg: str, video: Path, width: int, height: int) -> list[bytes]:
    """Every frame of ``video`` as raw RGB24."""
    raw = subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-i", str(video), "-map", "0:v:0",
         "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"],
        capture_output=True, check=True,
    ).stdout
    size = width * height * 3
    assert len(raw) % size == 0
    return [raw[i : i + size] for i in range(0, len(raw), size)]


def pixel(frame: bytes, width: int, x: int, y: int) -> tuple[int, int, int]:
    offset = (y * width + x) * 3
    return frame[offset], frame[offset + 1], frame[offset + 2]


def close(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int = TOLERANCE) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def decode_audio(ffmpeg: str, video: Path, rate: int = 48_000) -> array.array:
    """The audio track as mono 16-bit samples."""
    raw = subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-i", str(video), "-map", "0:a:0",
         "-f", "s16le", "-ac", "1", "-ar", str(rate), "pipe:1"],
        capture_output=True, check=True,
    ).stdout
    samples = array.array("h")
    samples.frombytes(raw)
    return samples


def rms(samples: array.array, start: int, end: int) -> float:
    window = samples[start:end]
    return math.sqrt(sum(s * s for s in window) / max(1, len(window))) / 32768


def boundaries(durations_ms: list[int], fps: int) -> list[tuple[int, int]]:
    """(first frame, frame count) of each step, computed independently of the renderer."""
    result, elapsed = [], 0
    for duration in durations_ms:
        start = math.floor(elapsed * fps / 1000 + 0.5)
        elapsed += duration
        result.append((start, math.floor(elapsed * fps / 1000 + 0.5) - start))
    return result


def border_is(frame: bytes, width: int, height: int, colour: tuple[int, int, int], strip: int = 2) -> bool:
    """Every pixel within ``strip`` of an edge is ``colour``."""
    for y in range(height):
        xs = range(width) if y < strip or y >= height - strip else [*range(strip), *range(width - strip, width)]
        for x in xs:
            if not close(pixel(frame, width, x, y), colour):
                return False
    return True


def hex_colour(value: str) -> tuple[int, int, int]:
    return int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16)


def alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the live children of ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append((int(entry.name), cmdline))
    return found


# -- fixtures ------------------------------------------------------------------

@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory, ffmpeg: str) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("media")
    return {
        "cover": make_image(folder / "cover.png", (200, 100), (200, 40, 40)),
        "clip": make_clip(ffmpeg, folder / "clip.mp4", 1.0),
        "tone": make_tone(ffmpeg, folder / "tone.wav", 1.0),
    }


def mixed_chapter(media: dict[str, Path], **options: Any) -> dict[str, Any]:
    """Three kinds of step (plain, image, clip) and a narration shorter than the video."""
    steps = [
        {"id": "intro", "durationMs": 1000, "title": "Hello", "text": "First step", "background": "#203040"},
        {"id": "image", "durationMs": 700, "title": "Image", "asset": "cover", "background": "#e0e0e0"},
        {"id": "clip", "durationMs": 1300, "text": "A clip", "asset": "clip", "background": "#105010"},
    ]
    assets = {
        "cover": asset("image", media["cover"]),
        "clip": asset("video", media["clip"]),
        "tone": asset("audio", media["tone"]),
    }
    audio = {"asset": "tone", "volume": 0.5, "fadeInMs": 100, "fadeOutMs": 300}
    return make_spec(steps, assets, audio=audio, **options)


# -- the video -----------------------------------------------------------------

def test_renders_every_step_with_audio(tmp_path: Path, ffmpeg: str, media: dict[str, Path]) -> None:
    spec = mixed_chapter(media, fps=15)

    result = render(spec, tmp_path / "out")

    assert result.returncode == 0, result.stderr
    video = tmp_path / "out" / "video.mp4"
    info = probe(ffmpeg, video)
    assert info.video.startswith("h264") and "yuv420p" in info.video
    assert info.audio is not None and info.audio.startswith("aac")
    assert (info.width, info.height, info.fps) == (320, 180, 15)
    assert abs(info.duration_s - 3.0) <= 1 / 15
    frames = decode(ffmpeg, video, 320, 180)
    assert len(frames) == 45
    for step, (start, count) in zip(spec["steps"], boundaries([1000, 700, 1300], 15), strict=True):
        middle = frames[start + count // 2]
        colour = hex_colour(step["background"])
        for x, y in ((2, 2), (317, 2), (2, 177), (317, 177)):
            assert close(pixel(middle, 320, x, y), colour), (step["id"], x, y, pixel(middle, 320, x, y))
    data = video.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # -movflags +faststart
    plan = result.json("plan.json")
    mux = plan["mux"]["ffmpegArgs"]
    assert mux[mux.index("-c") + 1] == "copy" and "libx264" not in mux  # joined without re-encoding


def test_audio_is_mixed_with_volume_and_fades_and_padded(tmp_path: Path, ffmpeg: str, media: dict[str, Path]) -> None:
    # Given a 1 s tone at volume 0.5 under a 3 s video, fading in over 100 ms
    result = render(mixed_chapter(media), tmp_path / "out")
    assert result.returncode == 0, result.stderr

    samples = decode_audio(ffmpeg, tmp_path / "out" / "video.mp4")

    rate = 48_000
    assert abs(len(samples) / rate - 3.0) <= 0.1  # padded to the video's length
    full = 0.125 / math.sqrt(2)  # RMS of ffmpeg's sine source
    assert rms(samples, int(0.4 * rate), int(0.9 * rate)) == pytest.approx(0.5 * full, rel=0.2)
    assert rms(samples, 0, int(0.02 * rate)) < 0.5 * rms(samples, int(0.4 * rate), int(0.9 * rate))  # fade-in
    assert rms(samples, int(1.5 * rate), int(2.5 * rate)) < 0.002  # silence after the tone


def test_images_are_letterboxed_not_stretched(tmp_path: Path, ffmpeg: str) -> None:
    wide = make_image(tmp_path / "wide.png", (400, 100), (220, 30, 30))
    tall = make_image(tmp_path / "tall.png", (100, 300), (30, 30, 220))
    spec = make_spec(
        [
            {"id": "wide", "durationMs": 600, "asset": "wide", "background": "#30a030"},
            {"id": "tall", "durationMs": 600, "asset": "tall", "background": "#30a030"},
        ],
        {"wide": asset("image", wide), "tall": asset("image", tall)},
    )

    result = render(spec, tmp_path / "out")

    assert result.returncode == 0, result.stderr
    frames = decode(ffmpeg, tmp_path / "out" / "video.mp4", 320, 180)
    for index, colour, aspect in ((3, (220, 30, 30), 4.0), (9, (30, 30, 220), 1 / 3)):
        frame = frames[index]
        inside = [(x, y) for y in range(180) for x in range(320) if close(pixel(frame, 320, x, y), colour, 40)]
        xs, ys = [x for x, _ in inside], [y for _, y in inside]
        width, height = max(xs) - min(xs) + 1, max(ys) - min(ys) + 1
        assert width / height == pytest.approx(aspect, rel=0.05)
        assert width >= 100 or height >= 100  # scaled to fit the frame, not left tiny
        # the background shows around it (letterbox or pillarbox), inside the frame
        above, left = pixel(frame, 320, 160, min(ys) - 3), pixel(frame, 320, min(xs) - 3, 90)
        assert close(above, (48, 160, 48)) or close(left, (48, 160, 48))


def test_clips_are_held_on_their_last_frame_and_trimmed(tmp_path: Path, ffmpeg: str) -> None:
    short = make_clip(ffmpeg, tmp_path / "short.mp4", 0.5)
    long = make_clip(ffmpeg, tmp_path / "long.mp4", 3.0)
    spec = make_spec(
        [
            {"id": "held", "durationMs": 2000, "asset": "short", "background": "#000000"},
            {"id": "trimmed", "durationMs": 1000, "asset": "long", "background": "#000000"},
        ],
        {"short": asset("video", short), "long": asset("video", long)},
    )

    result = render(spec, tmp_path / "out")

    assert result.returncode == 0, result.stderr
    info = probe(ffmpeg, tmp_path / "out" / "video.mp4")
    assert info.audio is None  # clips are muted, and there is no narration
    assert abs(info.duration_s - 3.0) <= 0.1
    frames = decode(ffmpeg, tmp_path / "out" / "video.mp4", 320, 180)
    assert len(frames) == 30

    def changed(a: bytes, b: bytes) -> int:
        """Pixels that differ visibly between two frames."""
        return sum(1 for i in range(0, len(a), 3) if max(abs(a[i + c] - b[i + c]) for c in range(3)) > 40)

    assert changed(frames[2], frames[3]) > 20  # the clip plays…
    assert changed(frames[6], frames[16]) == 0  # …then holds its last frame
    assert not close(pixel(frames[10], 320, 160, 90), (0, 0, 0))  # the clip, not the background
    assert changed(frames[22], frames[25]) > 20  # the long clip plays within its step


@pytest.mark.parametrize(
    "title, text",
    [
        ("Café crème, naïve façade, Ångström", "Größe, ñandú, œuvre — déjà vu"),
        ("مرحبا بالعالم", "هذا نص عربي طويل إلى حد ما حتى يلتف على عدة أسطر في الإطار الصغير"),
        ("שלום עולם", "טקסט בעברית עם מספרים 123 ו-English mixed in"),  # noqa: RUF001 - Hebrew on purpose
        ("Emoji 🎉👍🏽👨‍👩‍👧‍👦", "🇫🇷🇯🇵 flags, ZWJ sequences and 漢字かなカナ"),
        ("Donaudampfschifffahrtsgesellschaftskapitänsmütze" * 3, "x" * 3000),
        ("control\x00chars\x1b[31m\ttab", "lone \ud800 surrogate, e\u0301 combining, \u202eoverride"),
    ],
    ids=["accents", "arabic", "hebrew", "emoji", "long-words", "control"],
)
def test_unicode_text_is_drawn_inside_the_frame(tmp_path: Path, ffmpeg: str, title: str, text: str) -> None:
    spec = make_spec([{"id": "text", "durationMs": 500, "title": title, "text": text, "background": "#204060"}])

    result = render(spec, tmp_path / "out")

    assert result.returncode == 0, result.stderr
    frame = decode(ffmpeg, tmp_path / "out" / "video.mp4", 320, 180)[2]
    assert border_is(frame, 320, 180, (32, 64, 96))  # nothing runs off the frame…
    drawn = sum(1 for i in range(0, len(frame), 3) if not close(tuple(frame[i : i + 3]), (32, 64, 96)))
    assert drawn > 200  # …and something was drawn


# -- the cache -----------------------------------------------------------------

def ten_steps(tmp_path: Path, cache_dir: Path | None) -> dict[str, Any]:
    image = make_image(tmp_path / "photo.png", (160, 120), (240, 200, 40))
    steps = [
        {"id": f"s{i}", "durationMs": 500, "title": f"Step {i}", "text": "Some text",
         "asset": "photo" if i % 3 == 0 else None, "background": "#%02x3050" % (i * 20)}
        for i in range(10)
    ]
    return make_spec(steps, {"photo": asset("image", image)}, cache_dir=cache_dir)


def test_changing_one_step_re_encodes_only_that_step(tmp_path: Path, ffmpeg: str) -> None:
    cache = tmp_path / "cache"
    spec = ten_steps(tmp_path, cache)
    first = render(spec, tmp_path / "first")
    assert first.returncode == 0, first.stderr
    assert [s["reused"] for s in first.json("report.json")["segments"]] == [False] * 10

    edited = copy.deepcopy(spec)
    edited["steps"][4]["title"] = "Step four, edited"
    second = render(edited, tmp_path / "second")

    assert second.returncode == 0, second.stderr
    report = second.json("report.json")
    assert [s["step"] for s in report["segments"] if not s["reused"]] == ["s4"]
    assert report["totals"]["encoded"] == 1
    assert len(list(cache.rglob("*.mp4"))) == 11
    before = decode(ffmpeg, tmp_path / "first" / "video.mp4", 320, 180)
    after = decode(ffmpeg, tmp_path / "second" / "video.mp4", 320, 180)
    assert len(before) == len(after) == 50
    changed = [index for index in range(50) if before[index] != after[index]]
    assert changed and set(changed) <= set(range(20, 25))


def test_identical_specs_render_identical_bytes(tmp_path: Path, media: dict[str, Path]) -> None:
    spec = mixed_chapter(media)

    first = render(spec, tmp_path / "first")
    second = render(spec, tmp_path / "second")
    cached = render(dict(spec, cacheDir=str(tmp_path / "cache")), tmp_path / "cached")

    assert first.returncode == second.returncode == cached.returncode == 0, first.stderr
    video = (tmp_path / "first" / "video.mp4").read_bytes()
    assert video == (tmp_path / "second" / "video.mp4").read_bytes()
    assert video == (tmp_path / "cached" / "video.mp4").read_bytes()
    assert (tmp_path / "first" / "poster.jpg").read_bytes() == (tmp_path / "second" / "poster.jpg").read_bytes()


def test_concurrent_renders_share_the_cache_safely(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(ten_steps(tmp_path, cache)))
    processes = [
        subprocess.Popen([sys.executable, "-m", "renderers.ffmpeg", str(spec_file), str(tmp_path / f"out{i}")],
                         cwd=ROOT, env=renderer_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for i in range(2)
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr.decode()

    assert (tmp_path / "out0" / "video.mp4").read_bytes() == (tmp_path / "out1" / "video.mp4").read_bytes()
    assert len(list(cache.rglob("*.mp4"))) == 10
    assert not [path for path in cache.rglob("*") if ".tmp" in path.name]


# -- dry run -------------------------------------------------------------------

def test_dry_run_writes_plan_and_poster_much_faster(tmp_path: Path, ffmpeg: str, media: dict[str, Path]) -> None:
    spec = mixed_chapter(media, width=640, height=360, fps=30, cache_dir=tmp_path / "cache")
    for step in spec["steps"]:
        step["durationMs"] *= 3

    started = time.perf_counter()
    dry = render(spec, tmp_path / "dry", "--dry-run")
    dry_s = time.perf_counter() - started

    assert dry.returncode == 0, dry.stderr
    assert not (tmp_path / "dry" / "video.mp4").exists()
    plan = dry.json("plan.json")
    assert [e["startMs"] for e in plan["timeline"]] == [0, 3000, 5100]
    assert [e["durationMs"] for e in plan["timeline"]] == [3000, 2100, 3900]
    assert all(re.fullmatch(r"[0-9a-f]{64}", e["cacheKey"]) and e["reused"] is False for e in plan["timeline"])
    assert all(e["ffmpegArgs"][0] == ffmpeg and "libx264" in e["ffmpegArgs"] for e in plan["timeline"])
    assert plan["mux"]["ffmpegArgs"][plan["mux"]["ffmpegArgs"].index("-c") + 1] == "copy"
    assert dry.json("report.json")["dryRun"] is True
    with Image.open(tmp_path / "dry" / "poster.jpg") as poster:
        assert poster.size == (640, 360)
        assert close(poster.convert("RGB").getpixel((3, 3)), (32, 48, 64))

    started = time.perf_counter()
    real = render(spec, tmp_path / "real")
    real_s = time.perf_counter() - started
    assert real.returncode == 0, real.stderr

    started = time.perf_counter()
    again = render(spec, tmp_path / "again", "--dry-run")
    dry_s = min(dry_s, time.perf_counter() - started)  # the faster of two: less noise
    assert [e["reused"] for e in again.json("plan.json")["timeline"]] == [True, True, True]
    assert [e["cacheKey"] for e in again.json("plan.json")["timeline"]] == [e["cacheKey"] for e in plan["timeline"]]
    assert dry_s < real_s / 2, (dry_s, real_s)


def test_poster_of_a_clip_step_shows_the_clip(tmp_path: Path, media: dict[str, Path]) -> None:
    spec = make_spec([{"id": "clip", "durationMs": 500, "asset": "clip", "background": "#000000"}],
                     {"clip": asset("video", media["clip"])})

    result = render(spec, tmp_path / "out", "--dry-run")

    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "out" / "poster.jpg") as poster:
        assert poster.size == (320, 180)
        assert not close(poster.convert("RGB").getpixel((160, 90)), (0, 0, 0))


# -- progress ------------------------------------------------------------------

def test_progress_lines_rise_to_one(tmp_path: Path, media: dict[str, Path]) -> None:
    result = render(mixed_chapter(media), tmp_path / "out")

    assert result.returncode == 0, result.stderr
    progress = result.progress
    assert len(progress) >= 3
    assert progress == sorted(progress) and len(set(progress)) == len(progress)
    assert 0 <= progress[0] and progress[-1] == 1.0
    report = result.json("report.json")
    assert report["renderer"] == "ffmpeg" and report["version"]
    assert [s["step"] for s in report["segments"]] == ["intro", "image", "clip"]
    assert all(isinstance(s["seconds"], float) and s["reused"] is False for s in report["segments"])


# -- bad input -----------------------------------------------------------------

def _corrupt(path: Path) -> Path:
    path.write_bytes(bytes(range(256)) * 20)
    return path


def _truncated_png(path: Path) -> Path:
    make_image(path, (200, 200), (10, 200, 10))
    Image.effect_noise((200, 200), 50).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _truncated_clip(path: Path, ffmpeg: str) -> Path:
    make_clip(ffmpeg, path, 1.0)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the moov atom is at the end: gone
    return path


@pytest.mark.parametrize(
    "case, name, words",
    [
        ("missing image", "cover", "not found"),
        ("corrupt image", "cover", "not a decodable image"),
        ("truncated image", "cover", "not a decodable image"),
        ("corrupt clip", "clip", "not a decodable video"),
        ("truncated clip", "clip", "not a decodable video"),
        ("audio without sound", "tone", "no audio stream"),
        ("sha256 mismatch", "cover", "sha256"),
    ],
)
@pytest.mark.parametrize("flags", [(), ("--dry-run",)], ids=["render", "dry-run"])
def test_bad_assets_exit_2_naming_the_asset(tmp_path: Path, ffmpeg: str, media: dict[str, Path], case: str,
                                            name: str, words: str, flags: tuple[str, ...]) -> None:
    spec = mixed_chapter(media)
    assets = spec["assets"]
    if case == "missing image":
        assets["cover"]["path"] = str(tmp_path / "nowhere.png")
    elif case == "corrupt image":
        assets["cover"]["path"] = str(_corrupt(tmp_path / "cover.png"))
    elif case == "truncated image":
        assets["cover"]["path"] = str(_truncated_png(tmp_path / "cover.png"))
    elif case == "corrupt clip":
        assets["clip"]["path"] = str(_corrupt(tmp_path / "clip.mp4"))
    elif case == "truncated clip":
        assets["clip"]["path"] = str(_truncated_clip(tmp_path / "clip.mp4", ffmpeg))
    elif case == "audio without sound":
        assets["tone"]["path"] = str(media["cover"])
    elif case == "sha256 mismatch":
        assets["cover"]["sha256"] = "0" * 64

    result = render(spec, tmp_path / "out", *flags)

    assert result.returncode == 2, result.stderr
    assert f"asset '{name}'" in result.stderr and words in result.stderr
    assert not (tmp_path / "out" / "video.mp4").exists()


def _spec_with(change: Callable[[dict[str, Any]], None]) -> str:
    spec = make_spec([{"id": "a", "durationMs": 500, "background": "#000000"}],
                     {"tone": asset("audio", Path("/nonexistent.wav"))})
    change(spec)
    return json.dumps(spec)


@pytest.mark.parametrize(
    "text, words",
    [
        ("{not json", "unreadable"),
        ("[]", "JSON object"),
        (_spec_with(lambda s: s.update(specVersion=2)), "specVersion"),
        (_spec_with(lambda s: s.update(steps=[])), "steps"),
        (_spec_with(lambda s: s["steps"][0].update(durationMs="500")), "steps[0].durationMs"),
        (_spec_with(lambda s: s["steps"][0].update(durationMs=5)), "steps[0].durationMs"),
        (_spec_with(lambda s: s["output"].update(width=321)), "output.width"),
        (_spec_with(lambda s: s["output"].update(fps=0)), "output.fps"),
        (_spec_with(lambda s: s["steps"][0].update(background="red")), "steps[0].background"),
        (_spec_with(lambda s: s["steps"][0].update(asset="nope")), "steps[0].asset"),
        (_spec_with(lambda s: s["steps"][0].update(asset="tone")), "steps[0].asset"),
        (_spec_with(lambda s: s["steps"].append(dict(s["steps"][0]))), "steps[1].id"),
        (_spec_with(lambda s: s.update(audio={"asset": "tone", "volume": float("nan")})), "audio.volume"),
        (_spec_with(lambda s: s.update(cacheDir="relative/dir")), "cacheDir"),
    ],
)
def test_bad_specs_exit_2_naming_the_field(tmp_path: Path, text: str, words: str) -> None:
    result = render(text, tmp_path / "out")

    assert result.returncode == 2, result.stderr
    assert words in result.stderr
    assert not (tmp_path / "out" / "video.mp4").exists()


def test_bad_arguments_exit_2(tmp_path: Path) -> None:
    completed = subprocess.run([sys.executable, "-m", "renderers.ffmpeg", "only-one-argument"], cwd=ROOT,
                               env=renderer_env(), capture_output=True, text=True)
    assert completed.returncode == 2
    assert "usage" in completed.stderr


# -- ffmpeg, its failures and its death ------------------------------------------

def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def test_preview_ffmpeg_overrides_the_binary(tmp_path: Path, ffmpeg: str) -> None:
    calls = tmp_path / "calls.log"
    wrapper = _script(tmp_path / "ffmpeg", f'echo "$@" >> "{calls}"\nexec "{ffmpeg}" "$@"\n')
    spec = make_spec([{"id": "a", "durationMs": 500, "title": "Hi", "background": "#000000"}])

    result = render(spec, tmp_path / "out", env=renderer_env(PREVIEW_FFMPEG=str(wrapper)))

    assert result.returncode == 0, result.stderr
    assert "libx264" in calls.read_text()


def test_an_ffmpeg_crash_exits_1_with_its_last_lines(tmp_path: Path) -> None:
    crash = _script(tmp_path / "ffmpeg", 'echo "starting up" >&2\necho "simulated crash: out of cheese" >&2\nexit 3\n')
    spec = make_spec([{"id": "a", "durationMs": 500, "title": "Hi", "background": "#000000"}])

    result = render(spec, tmp_path / "out", env=renderer_env(PREVIEW_FFMPEG=str(crash)))

    assert result.returncode == 1, result.stderr
    assert "simulated crash: out of cheese" in result.stderr
    assert not (tmp_path / "out" / "video.mp4").exists()


INTERMEDIATE = """
import subprocess, sys
renderer = subprocess.Popen([sys.executable, "-m", "renderers.ffmpeg", sys.argv[1], sys.argv[2]],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(renderer.pid, flush=True)
renderer.wait()
"""


def test_killing_the_parent_kills_the_renderer_and_its_ffmpeg(tmp_path: Path) -> None:
    # Given a render long enough (two 30-minute steps) to be killed mid-encode
    steps = [{"id": f"long{i}", "durationMs": 1_800_000, "title": "Long", "background": "#000000"} for i in range(2)]
    spec = make_spec(steps, width=640, height=360, fps=30)
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(spec))
    worker = subprocess.Popen([sys.executable, "-c", INTERMEDIATE, str(spec_file), str(tmp_path / "out")],
                              cwd=ROOT, env=renderer_env(), stdout=subprocess.PIPE, text=True)
    renderer = int(worker.stdout.readline())
    encoders: list[int] = []
    try:
        found = wait_until(
            lambda: [pid for pid, cmd in children(renderer) if "ffmpeg" in cmd], timeout_s=30, what="ffmpeg to start"
        )
        encoders = list(found)

        # When the worker (the renderer's parent) is killed
        worker.kill()
        worker.wait()

        # Then the renderer and every ffmpeg it started die too
        wait_until(lambda: not alive(renderer), timeout_s=10, what="the renderer to die")
        wait_until(lambda: not any(alive(pid) for pid in encoders), timeout_s=10, what="its ffmpeg children to die")
    finally:
        for pid in [renderer, *encoders]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        worker.stdout.close()
