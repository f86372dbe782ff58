"""A render from start to end: check, plan, encode what the cache lacks, join.

1. The spec and every asset are checked (bad input exits 2, naming it).
2. The plan gives each step whole frames and its segment a cache key.
3. ``poster.jpg`` is the first step's frame. A dry run writes ``plan.json``
   and ``report.json`` and stops here.
4. Segments missing from the cache, and the audio track, are encoded, several
   ffmpeg children at once (each single-threaded, so the bytes do not depend
   on the machine); the concat demuxer joins the segments with ``-c copy`` and
   muxes the audio into ``video.mp4``.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from renderers import protocol
from renderers.ffmpeg import commands, process, text
from renderers.ffmpeg.assets import resolve_assets
from renderers.ffmpeg.compose import compose
from renderers.ffmpeg.fonts import FontSettingError
from renderers.ffmpeg.plan import AUDIO_SUFFIX, NAME, SEGMENT_SUFFIX, VERSION, Plan, Segment, make_plan
from renderers.ffmpeg.spec import parse_spec
from renderers.ffmpeg.truncation import Scan

#: JPEG quality of the poster.
POSTER_QUALITY = 85
#: Progress reached when the checks are done, and when encoding is done.
PROGRESS_CHECKED = 0.05
PROGRESS_ENCODED = 0.95
#: Work of encoding the audio track, in frames of video per frame of the video.
AUDIO_WORK_PER_FRAME = 0.3


@dataclass
class Progress:
    """Prints ``progress=`` lines that only ever go up."""

    last: float = -1.0
    #: Smallest rise worth a line.
    resolution: float = 0.01

    def report(self, fraction: float) -> None:
        fraction = min(1.0, fraction)
        if fraction > self.last and (fraction == 1.0 or fraction >= self.last + self.resolution):
            self.last = fraction
            protocol.report_progress(fraction)


@dataclass
class Render:
    plan: Plan
    out_dir: Path
    progress: Progress = field(default_factory=Progress)
    timings: dict[str, float] = field(default_factory=dict)
    _frames: dict[int, Image.Image] = field(default_factory=dict)
    #: Warnings about the assets (clips cut short, :mod:`~renderers.ffmpeg.truncation`), for ``report.json``.
    asset_warnings: list[dict[str, str]] = field(default_factory=list)

    def frame(self, segment: Segment, keep: bool = False) -> Image.Image:
        """The step's composed frame (for a clip: everything but the clip)."""
        index = segment.slot.step.index
        frame = self._frames.get(index)
        if frame is None:
            image = segment.asset.image if segment.asset is not None and not segment.is_clip else None
            frame = compose(segment.layout, segment.slot.step.background, image)
            if keep:
                self._frames[index] = frame
        return frame

    def write_poster(self) -> None:
        started = time.perf_counter()
        target = self.out_dir / protocol.POSTER_FILE
        temporary = target.with_name(f".{target.name}.tmp")
        self._poster(self.plan.segments[0]).save(temporary, "JPEG", quality=POSTER_QUALITY)
        os.replace(temporary, target)
        self.timings["posterSeconds"] = time.perf_counter() - started

    def _poster(self, first: Segment) -> Image.Image:
        if not first.is_clip:
            return self.frame(first, keep=True)  # kept: its segment may need it next
        args = self.plan.poster_args(first)
        result = process.run_capture("poster", args)
        if result.returncode != 0 or not result.stdout:
            tail = result.stderr.decode("utf-8", "replace").splitlines()[-process.STDERR_TAIL_LINES :]
            raise process.FfmpegError("poster", f"exited with status {result.returncode}", tail)
        with Image.open(io.BytesIO(result.stdout)) as clip_frame:
            media = clip_frame.convert("RGBA" if clip_frame.mode == "RGBA" else "RGB")  # alpha: over the background
            return compose(first.layout, first.slot.step.background, media)

    def encode(self) -> None:
        """Encode every segment (and the audio track) the cache lacks."""
        started = time.perf_counter()
        plan = self.plan
        to_encode = [segment for segment in plan.segments if not segment.reused]
        encode_audio = plan.audio is not None and not plan.audio.reused
        audio_work = int(plan.frames * AUDIO_WORK_PER_FRAME) if encode_audio else 0
        work = sum(segment.slot.frames for segment in to_encode) + audio_work
        done: dict[str, int] = {}

        def on_frames(label: str, frames: int) -> None:
            done[label] = frames
            share = min(1.0, sum(done.values()) / work) if work else 1.0
            self.progress.report(PROGRESS_CHECKED + (PROGRESS_ENCODED - PROGRESS_CHECKED) * share)

        temporaries: list[Path] = []
        calls = []
        if encode_audio:
            calls.append(self._audio_call(audio_work, temporaries))  # the longest job: first
        for segment in sorted(to_encode, key=lambda s: -s.slot.frames):  # longest first packs best
            calls.append(self._segment_call(segment, temporaries))
        try:
            seconds = process.Runner(parallel=_cpu_count(), on_frames=on_frames).run(calls)
        finally:
            for temporary in temporaries:
                plan.store.discard(temporary)
        for segment in to_encode:
            segment.seconds += seconds.get(segment.slot.step.id, 0.0)
        if plan.audio is not None and encode_audio:
            plan.audio.seconds = seconds.get("audio", 0.0)
        self.timings["encodeSeconds"] = time.perf_counter() - started

    def _segment_call(self, segment: Segment, temporaries: list[Path]) -> process.Call:
        store = self.plan.store
        temporary = store.temporary(segment.key, SEGMENT_SUFFIX)
        temporaries.append(temporary)

        def feed() -> Iterable[bytes]:
            started = time.perf_counter()
            frame = self.frame(segment).tobytes()
            segment.seconds += time.perf_counter() - started
            return [frame]

        return process.Call(
            label=segment.slot.step.id,
            args=self.plan.segment_args(segment, temporary),
            feed=feed,
            on_success=lambda: store.commit(temporary, segment.key, SEGMENT_SUFFIX),
            frames=segment.slot.frames,
        )

    def _audio_call(self, work: int, temporaries: list[Path]) -> process.Call:
        audio, store = self.plan.audio, self.plan.store
        assert audio is not None
        temporary = store.temporary(audio.key, AUDIO_SUFFIX)
        temporaries.append(temporary)
        return process.Call(
            label="audio",
            args=self.plan.audio_args(temporary),
            on_success=lambda: store.commit(temporary, audio.key, AUDIO_SUFFIX),
            frames=work,
        )

    def join(self) -> int:
        """Concatenate the segments and mux the audio into ``video.mp4``; return its size."""
        started = time.perf_counter()
        plan = self.plan
        listing = commands.concat_list([plan.segment_path(segment) for segment in plan.segments])
        plan.concat_file.write_text(listing, encoding="utf-8")
        target = self.out_dir / protocol.VIDEO_FILE
        temporary = target.with_name(f".{target.name}.tmp")
        try:
            process.Runner(parallel=1).run([process.Call("mux", plan.mux_args(temporary))])
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
        self.timings["muxSeconds"] = time.perf_counter() - started
        return target.stat().st_size

    def report(self, dry_run: bool, video_bytes: int | None) -> dict[str, Any]:
        """``report.json``: what was reused, what was encoded, how long it took."""
        plan = self.plan
        reused = sum(1 for segment in plan.segments if segment.reused)
        audio = plan.audio
        return {
            "renderer": NAME,
            "version": VERSION,
            "dryRun": dry_run,
            "output": plan.spec.output.as_dict(),
            "segments": [
                {
                    "step": segment.slot.step.id,
                    "reused": segment.reused,
                    "seconds": round(segment.seconds, 4),
                    "frames": segment.slot.frames,
                    "cacheKey": segment.key,
                }
                for segment in plan.segments
            ],
            "audio": None if audio is None else {
                "reused": audio.reused, "seconds": round(audio.seconds, 4), "cacheKey": audio.key,
            },
            "totals": {
                "steps": len(plan.segments),
                "reused": reused,
                "encoded": len(plan.segments) - reused,
                "frames": plan.frames,
                "durationMs": round(plan.frames * 1000 / plan.spec.output.fps, 3),
                "videoBytes": video_bytes,
            },
            "timings": {name: round(value, 4) for name, value in sorted(self.timings.items())},
            "warnings": self.warnings(),
        }

    def warnings(self) -> list[dict[str, str]]:
        """``report.json``'s ``warnings``: ``{code, message, step}`` entries, an empty list when none."""
        warnings = []
        for segment in self.plan.segments:
            layout = segment.layout
            missing = text.missing_glyphs_warning(segment.slot.step.id, (layout.title, layout.text))
            if missing is not None:
                warnings.append(missing)
        return warnings + self.asset_warnings


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def run(spec_path: Path, out_dir: Path, dry_run: bool) -> int:
    started = time.perf_counter()
    spec = parse_spec(protocol.load_spec(spec_path))
    ffmpeg = process.ffmpeg_exe()
    assets = resolve_assets(spec, ffmpeg)
    out_dir.mkdir(parents=True, exist_ok=True)
    work_dir = out_dir / ".work"
    with Scan.start(spec, assets, ffmpeg) as scan:  # clips cut short: read while the plan is made
        render = Render(make_plan(spec, assets, ffmpeg, work_dir), out_dir)
        render.asset_warnings = scan.warnings()
    render.timings["checkSeconds"] = time.perf_counter() - started
    render.progress.report(PROGRESS_CHECKED)
    try:
        render.write_poster()
        video_bytes = None
        if not dry_run:
            work_dir.mkdir(parents=True, exist_ok=True)
            render.encode()
            video_bytes = render.join()
        protocol.write_json_atomically(out_dir / protocol.PLAN_FILE, render.plan.document(out_dir))
        render.timings["totalSeconds"] = time.perf_counter() - started
        protocol.write_json_atomically(out_dir / protocol.REPORT_FILE, render.report(dry_run, video_bytes))
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    render.progress.report(1.0)
    return protocol.EXIT_OK


def main(argv: list[str] | None = None) -> int:
    protocol.die_with_parent()
    spec_path, out_dir, dry_run = protocol.parse_argv(sys.argv[1:] if argv is None else argv)
    try:
        return run(Path(spec_path), Path(out_dir), dry_run)
    except protocol.BadInput as error:
        protocol.fail_bad_input(str(error))
    except process.FfmpegError as error:
        print(f"render failed: {error}", file=sys.stderr)
        for line in error.tail:
            print(f"  {line}", file=sys.stderr)
        sys.stderr.flush()
        return protocol.EXIT_FAILURE
    except (OSError, FontSettingError) as error:
        print(f"render failed: {error}", file=sys.stderr, flush=True)
        return protocol.EXIT_FAILURE
