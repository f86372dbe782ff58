"""Checking a structured request against the limits and its own cross references.

:func:`parse_job_request` runs two passes, both collecting every problem before
raising one :class:`~preview_actors.errors.ValidationError`:

1. *Structure* with the strict converter (:mod:`.converter`, :mod:`.types`).
2. *Check* the structured request against :class:`~preview_actors.limits.Limits`
   and its own cross references (step ids unique, assets that exist and fit,
   URIs by :mod:`.uris`), normalizing on the way (lowercase jobId and colours).

Type errors do not hide the rest: when pass 1 fails, the lenient converter
structures what it can, with :data:`~.converter.UNKNOWN` where a value is
missing or of the wrong type, and pass 2 checks that. A check skips an unknown
value and whatever depends on it (no "unknown asset" once an asset's id is
unknown, no total duration once a step's is), so each problem is reported
once: the type errors first, then the others.

Field paths use the JSON's own spelling: ``previewRequest.steps[2].durationMs``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

import attrs

from ..errors import FieldError, UriError, ValidationError
from ..limits import Limits
from .converter import STRUCTURE_ERRORS, UNKNOWN, field_errors, join, known
from .types import (
    CONVERTER,
    LENIENT_CONVERTER,
    Asset,
    AudioTrack,
    JobRequest,
    OutputSettings,
    PreviewRequest,
    Step,
)
from .uris import CONTROL, classify_uri, codepoint

__all__ = ["MAX_REQUEST_ID_CHARS", "MAX_VOLUME", "MIN_VOLUME", "parse_job_request", "parse_preview_request"]

_T = TypeVar("_T")

#: Audio volume range (a gain factor; 1.0 leaves the track as it is).
MIN_VOLUME, MAX_VOLUME = 0.0, 2.0
#: Longest ``requestId``, characters.
MAX_REQUEST_ID_CHARS = 128

_VISUAL_TYPES = frozenset({"image", "video"})
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]*")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_REQUEST_ID = re.compile(r"[\x21-\x7e]+")
_COLOUR = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # \t and \n allowed


def parse_job_request(
    data: object,
    *,
    limits: Limits = Limits(),
    allowed_hosts: frozenset[str] = frozenset(),
) -> JobRequest:
    """Structure and validate a job request body (already parsed JSON).

    Returns the normalized request. Raises :class:`ValidationError` listing every
    problem found: type problems first, then limits and references.
    """
    checker = _Checker(limits, frozenset(host.lower() for host in allowed_hosts))
    return _parse(data, JobRequest, checker.job_request, checker)


def parse_preview_request(
    data: object,
    *,
    limits: Limits = Limits(),
    allowed_hosts: frozenset[str] = frozenset(),
) -> PreviewRequest:
    """Like :func:`parse_job_request`, for a bare ``previewRequest``.

    Field paths then start at its own fields (``steps[0].durationMs``).
    """
    checker = _Checker(limits, frozenset(host.lower() for host in allowed_hosts))
    return _parse(data, PreviewRequest, lambda preview: checker.preview_request(preview, ""), checker)


def _parse(data: object, cls: type[_T], check: Callable[[_T], _T], checker: _Checker) -> _T:
    """Structure ``data`` as ``cls`` and ``check`` it; raise every problem of both passes at once."""
    try:
        structured = CONVERTER.structure(data, cls)
    except STRUCTURE_ERRORS as exc:
        type_errors = field_errors(exc)
        salvaged = LENIENT_CONVERTER.structure(data, cls)
        if salvaged is not UNKNOWN:
            check(salvaged)
        raise ValidationError([*type_errors, *checker.errors]) from None
    checked = check(structured)
    checker.raise_if_any()
    return checked


@attrs.define
class _AssetIndex:
    """The assets' types by id, as far as they are known."""

    types: dict[str, str] = attrs.Factory(dict)
    #: False when some asset's id is unknown: a reference not found may name it.
    complete: bool = True

    def type_of(self, asset_id: str) -> str | None:
        """The asset's type (:data:`UNKNOWN` if of the wrong type), None if no asset has that id."""
        return self.types.get(asset_id)


@attrs.define
class _Checker:
    """Collects :class:`FieldError` s while checking (and normalizing) a structured request."""

    limits: Limits
    allowed_hosts: frozenset[str]
    errors: list[FieldError] = attrs.Factory(list)

    def error(self, field: str, message: str) -> None:
        self.errors.append(FieldError(field, message))

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationError(self.errors)

    def job_request(self, request: JobRequest) -> JobRequest:
        job_id = request.job_id
        if job_id is not None and known(job_id):
            if _UUID.fullmatch(job_id):
                job_id = job_id.lower()
            else:
                self.error("jobId", "must be a UUID like 123e4567-e89b-42d3-a456-426614174000")
        self.identifier("projectId", request.project_id)
        if request.request_id is not None and known(request.request_id):
            if not request.request_id:
                self.error("requestId", "must not be empty")
            elif len(request.request_id) > MAX_REQUEST_ID_CHARS:
                self.error("requestId", f"must be at most {MAX_REQUEST_ID_CHARS} characters")
            elif not _REQUEST_ID.fullmatch(request.request_id):
                self.error("requestId", "must be printable ASCII without spaces")
        if not known(request.preview_request):
            return request
        preview = self.preview_request(request.preview_request, "previewRequest")
        return attrs.evolve(request, job_id=job_id, preview_request=preview)

    def preview_request(self, preview: PreviewRequest, path: str) -> PreviewRequest:
        limits = self.limits
        self.identifier(join(path, "chapterId"), preview.chapter_id)
        if known(preview.output):
            self.output(join(path, "output"), preview.output)

        assets = _AssetIndex()
        assets_path = join(path, "assets")
        if not known(preview.assets):
            assets.complete = False
        elif len(preview.assets) > limits.max_assets:
            self.error(assets_path, f"must have at most {limits.max_assets} assets")
        for index, asset in enumerate(preview.assets if known(preview.assets) else ()):
            self.asset(f"{assets_path}[{index}]", asset, assets)

        steps_path = join(path, "steps")
        sent_steps: tuple[Step, ...] = preview.steps if known(preview.steps) else ()
        if not known(preview.steps):
            pass
        elif not preview.steps:
            self.error(steps_path, "must have at least one step")
        elif len(preview.steps) > limits.max_steps:
            self.error(steps_path, f"must have at most {limits.max_steps} steps")
        step_ids: set[str] = set()
        steps = tuple(self.step(f"{steps_path}[{index}]", step, step_ids, assets) for index, step in enumerate(sent_steps))
        # The total is known only when every duration is.
        total_ms: int | None = None
        if known(preview.steps) and all(known(step) and known(step.duration_ms) for step in steps):
            total_ms = sum(step.duration_ms for step in steps)
            if total_ms > limits.max_total_duration_ms:
                self.error(
                    steps_path,
                    f"total duration {total_ms} ms must be at most {limits.max_total_duration_ms} ms",
                )
        if preview.audio is not None and known(preview.audio):
            self.audio(join(path, "audio"), preview.audio, assets, total_ms)
        if all(checked is sent for checked, sent in zip(steps, sent_steps, strict=True)):
            return preview
        return attrs.evolve(preview, steps=steps)

    def output(self, path: str, output: OutputSettings) -> None:
        limits = self.limits
        bounds = (
            ("width", output.width, limits.min_side, limits.max_width),
            ("height", output.height, limits.min_side, limits.max_height),
            ("fps", output.fps, limits.min_fps, limits.max_fps),
        )
        for name, value, low, high in bounds:
            if output.preset is not None:
                # The JSON holds only the preset's name: the error is on `output`.
                if not low <= value <= high:
                    message = f"preset '{output.preset}' has {name} {value}, outside {low}..{high}"
                    self.error(path, message)
                continue
            if self.in_range(join(path, name), value, low, high) and name != "fps" and value % 2:
                self.error(join(path, name), "must be an even number (H.264 4:2:0)")

    def asset(self, path: str, asset: Asset, assets: _AssetIndex) -> None:
        if not known(asset):
            assets.complete = False
            return
        if not known(asset.id):
            assets.complete = False
        elif self.identifier(join(path, "id"), asset.id):
            if asset.id in assets.types:
                self.error(join(path, "id"), f"duplicate asset id '{asset.id}'")
            else:
                assets.types[asset.id] = asset.type
        if known(asset.uri):
            try:
                classify_uri(asset.uri, self.allowed_hosts, self.limits)
            except UriError as exc:
                self.error(join(path, "uri"), exc.reason)
        if asset.sha256 is not None and known(asset.sha256) and not _SHA256.fullmatch(asset.sha256):
            self.error(join(path, "sha256"), "must be 64 lowercase hex characters")

    def step(self, path: str, step: Step, step_ids: set[str], assets: _AssetIndex) -> Step:
        if not known(step):
            return step
        limits = self.limits
        if self.identifier(join(path, "id"), step.id):
            if step.id in step_ids:
                self.error(join(path, "id"), f"duplicate step id '{step.id}'")
            step_ids.add(step.id)
        self.in_range(
            join(path, "durationMs"),
            step.duration_ms,
            limits.min_step_duration_ms,
            limits.max_step_duration_ms,
        )
        if step.title is not None:
            self.text(join(path, "title"), step.title, limits.max_title_chars, CONTROL)
        if step.text is not None:
            self.text(join(path, "text"), step.text, limits.max_text_chars, _TEXT_CONTROL)
        if step.asset is not None and known(step.asset):
            asset_type = assets.type_of(step.asset)
            if asset_type is None:
                if assets.complete:
                    self.error(join(path, "asset"), f"unknown asset '{step.asset}'")
            elif asset_type not in _VISUAL_TYPES and known(asset_type):
                self.error(
                    join(path, "asset"),
                    f"asset '{step.asset}' is {asset_type}; a step shows an image or video",
                )
        background = step.background
        if not known(background):
            pass
        elif _COLOUR.fullmatch(background):
            background = background.lower()
            if len(background) == 4:
                background = "#" + "".join(2 * digit for digit in background[1:])
        else:
            self.error(join(path, "background"), "must be a colour like '#102030' or '#123'")
        return step if background == step.background else attrs.evolve(step, background=background)

    def audio(self, path: str, audio: AudioTrack, assets: _AssetIndex, total_ms: int | None) -> None:
        """Check the audio track; ``total_ms`` is the steps' total duration, None when unknown."""
        asset_type = assets.type_of(audio.asset) if known(audio.asset) else UNKNOWN
        if asset_type is None:
            if assets.complete:
                self.error(join(path, "asset"), f"unknown asset '{audio.asset}'")
        elif asset_type != "audio" and known(asset_type):
            message = f"asset '{audio.asset}' is {asset_type}; audio needs an audio asset"
            self.error(join(path, "asset"), message)
        if known(audio.volume) and not MIN_VOLUME <= audio.volume <= MAX_VOLUME:
            self.error(join(path, "volume"), f"must be between {MIN_VOLUME} and {MAX_VOLUME}")
        fades_ok = self.in_range(join(path, "fadeInMs"), audio.fade_in_ms, 0, None)
        fades_ok &= self.in_range(join(path, "fadeOutMs"), audio.fade_out_ms, 0, None)
        if fades_ok and total_ms:  # no steps: reported already
            fades_ms = audio.fade_in_ms + audio.fade_out_ms
            if fades_ms > total_ms:
                self.error(
                    path,
                    f"fadeInMs + fadeOutMs ({fades_ms} ms) must be at most the total duration ({total_ms} ms)",
                )

    def identifier(self, path: str, value: str) -> bool:
        if not known(value):
            return False
        if not value:
            self.error(path, "must not be empty")
        elif len(value) > self.limits.max_id_chars:
            self.error(path, f"must be at most {self.limits.max_id_chars} characters")
        elif not _ID.fullmatch(value):
            self.error(
                path,
                "must start with a letter or digit and contain only letters, digits, '.', '_', ':' and '-'",
            )
        else:
            return True
        return False

    def text(self, path: str, value: str, max_chars: int, control: re.Pattern[str]) -> None:
        if not known(value):
            return
        if len(value) > max_chars:
            self.error(path, f"must be at most {max_chars} characters")
        found = control.search(value)
        if found:
            self.error(path, f"must not contain control characters (found {codepoint(found.group())})")

    def in_range(self, path: str, value: int, low: int, high: int | None) -> bool:
        """Report ``value`` outside ``low..high``; True when it is known and inside."""
        if not known(value):
            return False
        if value < low:
            self.error(path, f"must be at least {low}")
        elif high is not None and value > high:
            self.error(path, f"must be at most {high}")
        else:
            return True
        return False
