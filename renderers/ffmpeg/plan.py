"""The render plan: what each segment is, its cache key, and the commands that make it.

A segment's key hashes everything that decides its bytes (:func:`segment_identity`):
the step's content (title, text, background, the asset's type and sha256), how
a clip's frames are decoded and converted (its picture filters: aspect, alpha,
colour), its frame count and fades, the output settings, the encoder settings,
the fonts, the ffmpeg build and the renderer version. The step's id and position do not
count, so equal steps share one segment. The audio track has a key of its own.
The plan is what a dry run writes as ``plan.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from renderers.ffmpeg import cache, commands, encoder, process, text
from renderers.ffmpeg.assets import ResolvedAsset
from renderers.ffmpeg.compose import Layout, plan_layout
from renderers.ffmpeg.pictures import ClipPicture
from renderers.ffmpeg.spec import Output, Spec
from renderers.ffmpeg.timeline import Slot, layout_timeline, total_frames

NAME = "ffmpeg"
#: Bump whenever a change alters rendered bytes (layout, text, filters): it is in every cache key.
#: 1.1.0: pictures as displayed (pixel aspect ratio, alpha in clips, 16-bit images, colour, ICC).
VERSION = "1.1.0"

SEGMENT_SUFFIX = ".mp4"
AUDIO_SUFFIX = ".m4a"


@dataclass
class Segment:
    slot: Slot
    layout: Layout
    asset: ResolvedAsset | None
    key: str
    #: Found in the cache, or made by an earlier step of this render.
    reused: bool
    #: Time spent making it (composing and encoding), in seconds.
    seconds: float = 0.0

    @property
    def is_clip(self) -> bool:
        return self.asset is not None and self.asset.asset.type == "video"

    @property
    def picture(self) -> ClipPicture | None:
        """How the clip's frames are shown (None for a step without a clip)."""
        if self.asset is None or not self.is_clip:
            return None
        return clip_picture(self.asset)


@dataclass
class AudioTrack:
    asset: ResolvedAsset
    key: str
    samples: int
    channels: int
    reused: bool
    seconds: float = 0.0


@dataclass
class Plan:
    spec: Spec
    ffmpeg: str
    store: cache.SegmentStore
    work_dir: Path
    segments: list[Segment]
    audio: AudioTrack | None

    @property
    def frames(self) -> int:
        return total_frames([segment.slot for segment in self.segments])

    @property
    def concat_file(self) -> Path:
        return self.work_dir / "segments.ffconcat"

    def segment_path(self, segment: Segment) -> Path:
        return self.store.path(segment.key, SEGMENT_SUFFIX)

    def audio_path(self) -> Path | None:
        return self.store.path(self.audio.key, AUDIO_SUFFIX) if self.audio is not None else None

    def segment_args(self, segment: Segment, target: Path) -> list[str]:
        output = self.spec.output
        picture = segment.picture
        if picture is not None:
            assert segment.asset is not None and segment.layout.media_box is not None
            clip = segment.asset.asset.path
            return commands.clip_segment(
                self.ffmpeg, output, segment.slot, clip, picture, segment.layout.media_box, target
            )
        return commands.still_segment(self.ffmpeg, output, segment.slot, target)

    def poster_args(self, segment: Segment) -> list[str]:
        """The command printing a clip step's first frame, as its segment shows it, as a PNG."""
        picture = segment.picture
        if picture is None or segment.asset is None or segment.layout.media_box is None:
            raise ValueError(f"step {segment.slot.step.id!r} has no clip")
        return commands.clip_first_frame(self.ffmpeg, segment.asset.asset.path, picture, segment.layout.media_box)

    def audio_args(self, target: Path) -> list[str]:
        assert self.audio is not None and self.spec.audio is not None
        settings, rate = self.spec.audio, encoder.AUDIO.sample_rate
        return commands.audio_track(
            self.ffmpeg,
            self.audio.asset.asset.path,
            samples=self.audio.samples,
            channels=self.audio.channels,
            volume=settings.volume,
            fade_in_samples=settings.fade_in_ms * rate // 1000,
            fade_out_samples=settings.fade_out_ms * rate // 1000,
            target=target,
        )

    def mux_args(self, target: Path) -> list[str]:
        return commands.mux(self.ffmpeg, self.spec.output, self.concat_file, self.audio_path(), target)

    def document(self, out_dir: Path) -> dict[str, Any]:
        """``plan.json``: the timeline, keys, reuse and every command line."""
        fps = self.spec.output.fps
        timeline = [
            {
                "step": segment.slot.step.id,
                "index": segment.slot.step.index,
                "kind": "clip" if segment.is_clip else "still",
                "asset": segment.slot.step.asset,
                "startMs": round(segment.slot.start_ms(fps), 3),
                "durationMs": segment.slot.step.duration_ms,
                "startFrame": segment.slot.start_frame,
                "frames": segment.slot.frames,
                "fadeFrames": segment.slot.fade_frames,
                "mediaBox": list(segment.layout.media_box) if segment.layout.media_box else None,
                "cacheKey": segment.key,
                "reused": segment.reused,
                "ffmpegArgs": self.segment_args(segment, self.segment_path(segment)),
            }
            for segment in self.segments
        ]
        audio = None
        if self.audio is not None:
            audio_path = self.audio_path()
            assert audio_path is not None
            audio = {
                "asset": self.audio.asset.id,
                "samples": self.audio.samples,
                "channels": self.audio.channels,
                "cacheKey": self.audio.key,
                "reused": self.audio.reused,
                "ffmpegArgs": self.audio_args(audio_path),
            }
        return {
            "renderer": NAME,
            "version": VERSION,
            "jobId": self.spec.job_id,
            "chapterId": self.spec.chapter_id,
            "output": self.spec.output.as_dict(),
            "frames": self.frames,
            "durationMs": round(self.frames * 1000 / fps, 3),
            "ffmpeg": self.ffmpeg,
            "cacheDir": str(self.spec.cache_dir) if self.spec.cache_dir is not None else None,
            "timeline": timeline,
            "audio": audio,
            "mux": {"ffmpegArgs": self.mux_args(out_dir / "video.mp4")},
        }


def make_plan(spec: Spec, assets: dict[str, ResolvedAsset], ffmpeg: str, work_dir: Path) -> Plan:
    root = spec.cache_dir / NAME if spec.cache_dir is not None else work_dir / "segments"
    store = cache.SegmentStore(root)
    context = _context(ffmpeg)
    segments = []
    seen: set[str] = set()
    for slot in layout_timeline(spec):
        step = slot.step
        asset = assets[step.asset] if step.asset is not None else None
        layout = plan_layout(spec.output, step.title, step.text, has_media=asset is not None)
        key = cache.key(segment_identity(context, spec.output, slot, asset, layout))
        segments.append(Segment(slot, layout, asset, key, reused=key in seen or store.has(key, SEGMENT_SUFFIX)))
        seen.add(key)
    audio = None
    if spec.audio is not None:
        source = assets[spec.audio.asset]
        assert source.media is not None and source.media.audio is not None  # checked by resolve_assets
        rate, fps = encoder.AUDIO.sample_rate, spec.output.fps
        samples = (total_frames([s.slot for s in segments]) * rate + fps // 2) // fps
        channels = min(2, max(1, source.media.audio.channels))
        key = cache.key({
            **context,
            "kind": "audio",
            "sha256": source.sha256,
            "volume": spec.audio.volume,
            "fadeInMs": spec.audio.fade_in_ms,
            "fadeOutMs": spec.audio.fade_out_ms,
            "samples": samples,
            "channels": channels,
        })
        audio = AudioTrack(source, key, samples, channels, reused=store.has(key, AUDIO_SUFFIX))
    return Plan(spec, ffmpeg, store, work_dir, segments, audio)


def segment_identity(
    context: dict[str, Any], output: Output, slot: Slot, asset: ResolvedAsset | None, layout: Layout
) -> dict[str, Any]:
    """What decides a segment's bytes. A clip's picture filters depend on the ``layout``'s media box."""
    step = slot.step
    picture = None
    if asset is not None and asset.asset.type == "video" and layout.media_box is not None:
        x0, y0, x1, y1 = layout.media_box
        picture = clip_picture(asset).identity(x1 - x0, y1 - y0)
    return {
        **context,
        "kind": "segment",
        "output": output.as_dict(),
        "frames": slot.frames,
        "fadeFrames": slot.fade_frames,
        "background": step.background_hex,
        "title": step.title,
        "text": step.text,
        "asset": None if asset is None else {"type": asset.asset.type, "sha256": asset.sha256},
        "picture": picture,
    }


def clip_picture(asset: ResolvedAsset) -> ClipPicture:
    """How a video asset's frames are shown, from its probed stream."""
    if asset.media is None or asset.media.video is None:
        raise ValueError(f"asset {asset.id!r} has no probed video stream")
    return ClipPicture.of(asset.media.video)


def _context(ffmpeg: str) -> dict[str, Any]:
    """What every key shares: renderer, encoder settings, fonts and the ffmpeg build."""
    return {
        "renderer": NAME,
        "version": VERSION,
        "encoder": encoder.settings_identity(),
        "fonts": text.font_identity(),
        "ffmpeg": process.ffmpeg_identity(ffmpeg),
    }
