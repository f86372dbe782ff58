"""The render spec, checked and typed.

The job model validates requests before a spec is written, but a renderer is a
program anyone can run: every field is checked again here, and a bad one raises
:class:`~renderers.protocol.BadInput` naming it (``steps[2].durationMs: …``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from renderers.protocol import BadInput

#: Output size bounds, in pixels (even numbers only: H.264 4:2:0 needs them).
MIN_SIZE_PX = 16
MAX_WIDTH_PX = 3840
MAX_HEIGHT_PX = 2160
#: Output frame rate bounds, frames per second (integers only).
MIN_FPS = 1
MAX_FPS = 60
#: Steps per spec.
MAX_STEPS = 500
#: Total duration of a chapter, in milliseconds.
MAX_TOTAL_DURATION_MS = 3_600_000
#: Characters in a title or a text.
MAX_TEXT_CHARS = 10_000
#: Audio volume multiplier bounds.
MAX_VOLUME = 10.0

ASSET_TYPES = ("image", "video", "audio")
_COLOUR = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Output:
    width: int
    height: int
    fps: int

    def as_dict(self) -> dict[str, int]:
        return {"width": self.width, "height": self.height, "fps": self.fps}


@dataclass(frozen=True)
class Step:
    index: int
    id: str
    duration_ms: int
    title: str | None
    text: str | None
    asset: str | None
    background: tuple[int, int, int]

    @property
    def background_hex(self) -> str:
        return "#{:02x}{:02x}{:02x}".format(*self.background)


@dataclass(frozen=True)
class Asset:
    id: str
    type: str
    path: Path
    sha256: str | None
    #: The request's ``uri`` for this asset, as the render stage passed it (None when run by hand).
    uri: str | None = None

    @property
    def name(self) -> str:
        """How errors and warnings name the asset: ``asset 'cover' (uri images/cover.png)``.

        By its id and the request's ``uri``, never by a path of the server; a
        spec without ``uri`` (a renderer run by hand) gets the path it gave.
        """
        return f"asset {self.id!r} ({'uri ' + self.uri if self.uri is not None else self.path})"

    def problem(self, message: str) -> str:
        """``message`` about this asset, prefixed with :attr:`name`; the path never shows when a ``uri`` is known."""
        if self.uri is not None:
            message = message.replace(str(self.path), self.uri)
        return f"{self.name}: {message}"


@dataclass(frozen=True)
class Audio:
    asset: str
    volume: float
    fade_in_ms: int
    fade_out_ms: int


@dataclass(frozen=True)
class Spec:
    job_id: str | None
    chapter_id: str | None
    output: Output
    steps: tuple[Step, ...]
    assets: dict[str, Asset]
    audio: Audio | None
    cache_dir: Path | None

    @property
    def duration_ms(self) -> int:
        return sum(step.duration_ms for step in self.steps)


def parse_spec(raw: dict[str, Any]) -> Spec:
    """Check a loaded SPEC.json (see :func:`renderers.protocol.load_spec`)."""
    output = _output(_field(raw, "output", dict, "output"))
    assets = _assets(_field(raw, "assets", dict, "assets"))
    raw_steps = _field(raw, "steps", list, "steps")
    if not raw_steps:
        raise BadInput("steps: must not be empty")
    if len(raw_steps) > MAX_STEPS:
        raise BadInput(f"steps: at most {MAX_STEPS} steps, got {len(raw_steps)}")
    steps = tuple(_step(index, item, output, assets) for index, item in enumerate(raw_steps))
    seen: set[str] = set()
    for step in steps:
        if step.id in seen:
            raise BadInput(f"steps[{step.index}].id: duplicate id {step.id!r}")
        seen.add(step.id)
    total_ms = sum(step.duration_ms for step in steps)
    if total_ms > MAX_TOTAL_DURATION_MS:
        raise BadInput(f"steps: total duration {total_ms} ms exceeds {MAX_TOTAL_DURATION_MS} ms")
    audio = None if raw.get("audio") is None else _audio(raw["audio"], assets)
    cache_dir = raw.get("cacheDir")
    if cache_dir is not None:
        if not isinstance(cache_dir, str) or not cache_dir or not Path(cache_dir).is_absolute():
            raise BadInput("cacheDir: must be an absolute path or null")
        cache_dir = Path(cache_dir)
    return Spec(
        job_id=_optional_str(raw, "jobId", "jobId"),
        chapter_id=_optional_str(raw, "chapterId", "chapterId"),
        output=output,
        steps=steps,
        assets=assets,
        audio=audio,
        cache_dir=cache_dir,
    )


def _output(raw: dict[str, Any]) -> Output:
    width = _int(raw, "width", "output.width", MIN_SIZE_PX, MAX_WIDTH_PX)
    height = _int(raw, "height", "output.height", MIN_SIZE_PX, MAX_HEIGHT_PX)
    fps = _int(raw, "fps", "output.fps", MIN_FPS, MAX_FPS)
    for name, value in (("width", width), ("height", height)):
        if value % 2:
            raise BadInput(f"output.{name}: must be even for H.264 4:2:0, got {value}")
    return Output(width, height, fps)


def _assets(raw: dict[str, Any]) -> dict[str, Asset]:
    assets = {}
    for asset_id, item in raw.items():
        where = f"assets[{asset_id!r}]"
        if not asset_id:
            raise BadInput("assets: an asset id must not be empty")
        if not isinstance(item, dict):
            raise BadInput(f"{where}: must be an object")
        kind = _field(item, "type", str, f"{where}.type")
        if kind not in ASSET_TYPES:
            raise BadInput(f"{where}.type: must be one of {', '.join(ASSET_TYPES)}, got {kind!r}")
        path = _field(item, "path", str, f"{where}.path")
        if not path or not Path(path).is_absolute() or "\0" in path:
            raise BadInput(f"{where}.path: must be an absolute path, got {path!r}")
        sha256 = _optional_str(item, "sha256", f"{where}.sha256")
        if sha256 is not None:
            sha256 = sha256.lower()
            if not _SHA256.fullmatch(sha256):
                raise BadInput(f"{where}.sha256: must be 64 hex digits")
        uri = _optional_str(item, "uri", f"{where}.uri")
        assets[asset_id] = Asset(asset_id, kind, Path(path), sha256, uri or None)
    return assets


def _step(index: int, raw: Any, output: Output, assets: dict[str, Asset]) -> Step:
    where = f"steps[{index}]"
    if not isinstance(raw, dict):
        raise BadInput(f"{where}: must be an object")
    step_id = _field(raw, "id", str, f"{where}.id")
    if not step_id:
        raise BadInput(f"{where}.id: must not be empty")
    duration_ms = _int(raw, "durationMs", f"{where}.durationMs", 1, MAX_TOTAL_DURATION_MS)
    if duration_ms * output.fps < 1000:
        raise BadInput(f"{where}.durationMs: {duration_ms} ms is shorter than one frame at {output.fps} fps")
    title = _text(raw, "title", f"{where}.title")
    text = _text(raw, "text", f"{where}.text")
    asset = _optional_str(raw, "asset", f"{where}.asset")
    if asset is not None:
        if asset not in assets:
            raise BadInput(f"{where}.asset: unknown asset {asset!r}")
        if assets[asset].type not in ("image", "video"):
            raise BadInput(f"{where}.asset: asset {asset!r} is {assets[asset].type}, not an image or a video")
    background = _field(raw, "background", str, f"{where}.background")
    if not _COLOUR.fullmatch(background):
        raise BadInput(f"{where}.background: must be a colour like #102030, got {background!r}")
    return Step(index, step_id, duration_ms, title, text, asset, parse_colour(background))


def _audio(raw: Any, assets: dict[str, Asset]) -> Audio:
    if not isinstance(raw, dict):
        raise BadInput("audio: must be an object or null")
    asset = _field(raw, "asset", str, "audio.asset")
    if asset not in assets:
        raise BadInput(f"audio.asset: unknown asset {asset!r}")
    if assets[asset].type != "audio":
        raise BadInput(f"audio.asset: asset {asset!r} is {assets[asset].type}, not audio")
    volume = raw.get("volume", 1.0)
    if isinstance(volume, bool) or not isinstance(volume, (int, float)) or not math.isfinite(volume):
        raise BadInput("audio.volume: must be a number")
    if not 0 <= volume <= MAX_VOLUME:
        raise BadInput(f"audio.volume: must be between 0 and {MAX_VOLUME}, got {volume}")
    fade_in = _int(raw, "fadeInMs", "audio.fadeInMs", 0, MAX_TOTAL_DURATION_MS, default=0)
    fade_out = _int(raw, "fadeOutMs", "audio.fadeOutMs", 0, MAX_TOTAL_DURATION_MS, default=0)
    return Audio(asset, float(volume), fade_in, fade_out)


def parse_colour(value: str) -> tuple[int, int, int]:
    digits = value[1:]
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return (int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16))


def _field(raw: dict[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in raw:
        raise BadInput(f"{where}: is required")
    value = raw[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise BadInput(f"{where}: must be {_KIND_NAMES.get(kind, kind.__name__)}")
    return value


def _int(raw: dict[str, Any], key: str, where: str, low: int, high: int, default: int | None = None) -> int:
    if default is not None and raw.get(key) is None:
        return default
    value: int = _field(raw, key, int, where)
    if not low <= value <= high:
        raise BadInput(f"{where}: must be between {low} and {high}, got {value}")
    return value


def _optional_str(raw: dict[str, Any], key: str, where: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise BadInput(f"{where}: must be a string or null")
    return value


def _text(raw: dict[str, Any], key: str, where: str) -> str | None:
    value = _optional_str(raw, key, where)
    if value is not None and len(value) > MAX_TEXT_CHARS:
        raise BadInput(f"{where}: at most {MAX_TEXT_CHARS} characters, got {len(value)}")
    return value or None


_KIND_NAMES = {dict: "an object", list: "a list", str: "a string", int: "an integer"}
