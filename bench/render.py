"""Benchmark: the ffmpeg renderer against one hand-written ffmpeg command.

    python -m bench render [--runs 5] [--chapter examples/chapter.json]
    python bench/render.py [--runs 5]   (the same)

Renders the example chapter (examples/make_assets.py makes its assets)
through ``python -m renderers.ffmpeg`` with a cold cache, and with a single
ffmpeg command that makes the same video: same size, fps and duration, same
x264 preset, tune and CRF, the same stills (composed by Pillow beforehand and
not timed), the same fades and the same audio mix, with x264's own threads
(the renderer instead encodes single-threaded segments in parallel). Then it
times a re-render after a one-step edit (warm cache) and a dry run. Prints
medians, min–max, the ratios to the hand-written command and the file sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python bench/render.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"
os.environ.setdefault("PREVIEW_BROKER_URL", "stub://")  # building the spec imports preview_actors: keep its broker harmless

from renderers.ffmpeg import encoder
from renderers.ffmpeg.assets import resolve_assets
from renderers.ffmpeg.commands import frame_numbers
from renderers.ffmpeg.compose import compose, plan_layout
from renderers.ffmpeg.process import ffmpeg_exe
from renderers.ffmpeg.spec import parse_spec
from renderers.ffmpeg.timeline import layout_timeline

from . import common
from .chapter_spec import build_spec, write_spec

ROOT = common.ROOT


def timed(args: list[str], cpu: list[float]) -> float:
    """Run ``args``; return its wall time and append its CPU time (user + sys, children included)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(args, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return wall


def run_renderer(spec_file: Path, out_dir: Path, *extra: str, cpu: list[float]) -> float:
    return timed([sys.executable, "-m", "renderers.ffmpeg", str(spec_file), str(out_dir), *extra], cpu)


def hand_written_command(spec_dict: dict, work: Path, target: Path) -> list[str]:
    """One ffmpeg command for the whole chapter; stills are written to ``work`` first."""
    ffmpeg = ffmpeg_exe()
    spec = parse_spec(spec_dict)
    assets = resolve_assets(spec, ffmpeg)
    output = spec.output
    size = f"{output.width}x{output.height}"
    to_yuv = encoder.to_yuv_filter()
    renumber = frame_numbers(output.fps)
    inputs: list[str] = []
    graph: list[str] = []
    labels: list[str] = []
    count = 0
    for slot in layout_timeline(spec):
        step = slot.step
        asset = assets[step.asset] if step.asset else None
        is_clip = asset is not None and asset.asset.type == "video"
        layout = plan_layout(output, step.title, step.text, has_media=asset is not None)
        still = work / f"{step.index:03d}.rgb"
        still.write_bytes(compose(layout, step.background, None if is_clip or asset is None else asset.image).tobytes())
        inputs += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-video_size", size, "-framerate", str(output.fps)]
        inputs += ["-i", str(still)]
        still_input = count
        count += 1
        n, k = slot.frames, slot.fade_frames
        colour = "0x{:02x}{:02x}{:02x}".format(*step.background)
        if is_clip:
            x0, y0, x1, y1 = layout.media_box
            w, h = x1 - x0, y1 - y0
            inputs += ["-i", str(asset.asset.path)]
            graph.append(f"[{still_input}:v]{to_yuv},loop=loop=-1:size=1:start=0,{renumber}[b{count}]")
            graph.append(
                f"[{count}:v:0]setpts=PTS-STARTPTS,fps={output.fps},scale=w={w}:h={h}:force_original_aspect_ratio=decrease:"
                f"force_divisible_by=2:out_color_matrix=bt709:out_range=tv:flags={encoder.SWS_FLAGS},setsar=1,format=yuv420p,"
                f"tpad=stop_mode=clone:stop=-1[c{count}]"
            )
            # Only the fading frames go through RGB (fade to a colour is RGB-only).
            i = step.index
            graph += [
                f"[b{count}][c{count}]overlay=x={x0}+({w}-w)/2:y={y0}+({h}-h)/2:eof_action=repeat,"
                f"trim=end_frame={n},split=3[in{i}][body{i}][out{i}]",
                f"[in{i}]trim=end_frame={k},format=rgb24,fade=t=in:s=0:n={k}:color={colour},{to_yuv}[fin{i}]",
                f"[body{i}]trim=start_frame={k}:end_frame={n - k - 1}[fbody{i}]",
                f"[out{i}]trim=start_frame={n - k - 1},format=rgb24,fade=t=out:s=0:n={k}:color={colour},{to_yuv}[fout{i}]",
                f"[fin{i}][fbody{i}][fout{i}]concat=n=3:v=1:a=0,{renumber}[v{i}]",
            ]
            count += 1
        else:
            head = min(n, 2 * k + 2)
            graph.append(
                f"[{still_input}:v]loop=loop={head - 1}:size=1:start=0,fade=t=in:s=0:n={k}:color={colour},"
                f"fade=t=out:s={head - k - 1}:n={k}:color={colour},{to_yuv},"
                f"loop=loop={n - head}:size=1:start={k + 1},{renumber}[v{step.index}]"
            )
        labels.append(f"[v{step.index}]")
    graph.append(f"{''.join(labels)}concat=n={len(labels)}:v=1:a=0[v]")
    maps = ["-map", "[v]"]
    audio_args: list[str] = []
    if spec.audio is not None:
        source = assets[spec.audio.asset]
        inputs += ["-i", str(source.asset.path)]
        rate = encoder.AUDIO.sample_rate
        frames = sum(slot.frames for slot in layout_timeline(spec))
        samples = frames * rate // output.fps
        fade_in = spec.audio.fade_in_ms * rate // 1000
        fade_out = spec.audio.fade_out_ms * rate // 1000
        graph.append(
            f"[{count}:a:0]aresample={rate},volume={spec.audio.volume!r},afade=t=in:start_sample=0:nb_samples={fade_in},"
            f"apad,atrim=end_sample={samples},afade=t=out:start_sample={samples - fade_out}:nb_samples={fade_out}[a]"
        )
        maps += ["-map", "[a]"]
        audio_args = encoder.audio_args(min(2, source.media.audio.channels))
    video = encoder.VIDEO
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-y", "-loglevel", "error",
        *inputs,
        "-filter_complex", ";".join(graph),
        *maps,
        "-c:v", "libx264", "-preset", video.preset, "-tune", video.tune, "-crf", str(video.crf),
        "-pix_fmt", "yuv420p", "-x264-params", f"keyint={video.keyframe_interval_s * output.fps}:scenecut=0:bframes=0",
        *audio_args,
        "-movflags", "+faststart", str(target),
    ]


def summary(times: list[float]) -> str:
    return f"median {statistics.median(times):6.2f} s  (min {min(times):.2f} – max {max(times):.2f}, n={len(times)})"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--chapter", type=Path, default=ROOT / "examples" / "chapter.json")
    parser.add_argument("--assets", type=Path, default=ROOT / "examples", help="the asset root (default: examples/)")


def run(options: argparse.Namespace) -> int:
    if not (options.assets / "assets" / "images").is_dir():
        print("no example assets: run python examples/make_assets.py first", file=sys.stderr)
        return 2
    print(common.machine())
    work = Path(tempfile.mkdtemp(prefix="preview-bench-"))
    try:
        return bench(options, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args())


def bench(options: argparse.Namespace, work: Path) -> int:
    spec = build_spec(options.chapter, options.assets, work / "cache-0")
    stills = work / "stills"
    stills.mkdir()
    baseline_target = work / "baseline.mp4"
    command = hand_written_command(spec, stills, baseline_target)

    renderer, baseline = [], []
    renderer_cpu: list[float] = []
    baseline_cpu: list[float] = []
    for run in range(options.runs):  # interleaved, so drifting machine load hits both alike
        cold = dict(spec, cacheDir=str(work / f"cache-{run}"))
        spec_file = write_spec(cold, work / f"spec-{run}.json")
        renderer.append(run_renderer(spec_file, work / f"out-{run}", cpu=renderer_cpu))
        baseline.append(timed(command, baseline_cpu))

    # Re-render after a one-step edit: each run edits the text of another step.
    warm = write_spec(dict(spec, cacheDir=str(work / "cache-0")), work / "warm.json")
    rerender = []
    for run in range(options.runs):
        edited = json.loads(warm.read_text(encoding="utf-8"))
        step = edited["steps"][(run * 3 + 1) % len(edited["steps"])]
        step["text"] = f"{step.get('text') or ''} (edit {run})"
        edited_file = write_spec(edited, work / f"edit-{run}.json")
        rerender.append(run_renderer(edited_file, work / f"rerender-{run}", cpu=[]))
        report = json.loads((work / f"rerender-{run}" / "report.json").read_text())
        encoded = sum(1 for segment in report["segments"] if not segment["reused"])
        if encoded != 1:
            print(f"warning: the re-render encoded {encoded} segments, not 1", file=sys.stderr)

    dry = []
    for run in range(options.runs):
        cold = dict(spec, cacheDir=str(work / f"dry-cache-{run}"))
        dry.append(run_renderer(write_spec(cold, work / f"dry-{run}.json"), work / f"dry-{run}", "--dry-run", cpu=[]))

    base = statistics.median(baseline)
    renderer_bytes = (work / "out-0" / "video.mp4").stat().st_size
    print(f"chapter: {options.chapter} ({len(spec['steps'])} steps, {spec['output']})")
    print(f"cpus: {len(os.sched_getaffinity(0))}, x264 {encoder.VIDEO.preset}/{encoder.VIDEO.tune} crf {encoder.VIDEO.crf}")
    print(f"hand-written ffmpeg  {summary(baseline)}")
    print(f"renderer, cold cache {summary(renderer)}  ratio {statistics.median(renderer) / base:.2f}  (target <= 1.2)")
    print(f"re-render, one edit  {summary(rerender)}  ratio {statistics.median(rerender) / base:.2f}  (target <= 0.4)")
    print(f"dry run              {summary(dry)}  ratio {statistics.median(dry) / base:.2f}  (target <= 0.1)")
    print(f"cpu time (user+sys): renderer {statistics.median(renderer_cpu):.2f} s, "
          f"hand-written {statistics.median(baseline_cpu):.2f} s (medians; less sensitive to other load)")
    print(f"sizes: renderer {renderer_bytes} bytes, hand-written {baseline_target.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
