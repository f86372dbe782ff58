"""The job request's frozen attrs classes, and their JSON form.

A :class:`JobRequest` is what a client POSTs; :meth:`JobRequest.to_json` is the
form stored and sent to workers, and :meth:`JobRequest.from_json` rebuilds it.
The JSON uses camelCase keys (``durationMs``); ``output`` is a preset name or
``{"width", "height", "fps"}``. Validating a request body is
:func:`preview_actors.request.parse_job_request`'s job (:mod:`.checks`).
"""

from __future__ import annotations

import functools
from typing import Any, Literal, TypeVar, get_args

import attrs
from cattrs import Converter
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from ..errors import ValidationError
from .converter import (
    STRUCTURE_ERRORS,
    UNKNOWN,
    Hook,
    Invalid,
    array_hook,
    camel_renames,
    choice_hook,
    expected,
    field_errors,
    is_tuple_of,
    make_converter,
    object_hook,
)

__all__ = [
    "DEFAULT_BACKGROUND",
    "DEFAULT_PRESET",
    "OUTPUT_PRESETS",
    "Asset",
    "AssetType",
    "AudioTrack",
    "JobRequest",
    "OutputSettings",
    "PreviewRequest",
    "Step",
]

_T = TypeVar("_T")

#: Output presets: name -> (width px, height px, frames per second).
OUTPUT_PRESETS: dict[str, tuple[int, int, int]] = {
    "preview": (640, 360, 24),
    "sd": (854, 480, 30),
    "hd": (1280, 720, 30),
    "fhd": (1920, 1080, 30),
}
DEFAULT_PRESET = "preview"
DEFAULT_BACKGROUND = "#000000"

AssetType = Literal["image", "video", "audio"]
ASSET_TYPES: tuple[str, ...] = get_args(AssetType)


@attrs.frozen(kw_only=True)
class OutputSettings:
    """Video size and frame rate; ``preset`` names the preset they came from, if any."""

    width: int  #: pixels
    height: int  #: pixels
    fps: int  #: frames per second
    preset: str | None = None

    @classmethod
    def from_preset(cls, name: str) -> OutputSettings:
        """The settings of preset ``name``; ``KeyError`` if it is not in :data:`OUTPUT_PRESETS`."""
        width, height, fps = OUTPUT_PRESETS[name]
        return cls(width=width, height=height, fps=fps, preset=name)


@attrs.frozen(kw_only=True)
class Asset:
    """An image, video or audio file a chapter uses, named by ``id`` in steps and audio."""

    id: str
    type: AssetType
    #: A path relative to PREVIEW_ASSET_ROOT, a ``data:`` URI or an allowed http(s) URL.
    uri: str
    #: Expected sha256 of the content, 64 lowercase hex characters.
    sha256: str | None = None


@attrs.frozen(kw_only=True)
class Step:
    """One slide of the chapter, shown for ``duration_ms`` milliseconds."""

    id: str
    duration_ms: int
    title: str | None = None
    text: str | None = None
    #: The id of an image or video asset shown in this step.
    asset: str | None = None
    #: ``#rrggbb`` once validated.
    background: str = DEFAULT_BACKGROUND


@attrs.frozen(kw_only=True)
class AudioTrack:
    """A sound track under the whole chapter; fades in milliseconds."""

    #: The id of an audio asset.
    asset: str
    #: A gain factor; 1.0 leaves the track as it is.
    volume: float = 1.0
    fade_in_ms: int = 0
    fade_out_ms: int = 0


@attrs.frozen(kw_only=True)
class PreviewRequest:
    """The chapter to render: its steps, the assets they use, an audio track and the output size."""

    chapter_id: str
    output: OutputSettings = OutputSettings.from_preset(DEFAULT_PRESET)
    steps: tuple[Step, ...]
    assets: tuple[Asset, ...] = ()
    audio: AudioTrack | None = None

    @property
    def total_duration_ms(self) -> int:
        """The steps' durations summed, milliseconds."""
        return sum(step.duration_ms for step in self.steps)


@attrs.frozen(kw_only=True)
class JobRequest:
    """A job request as POSTed: the preview to render and who asked for it."""

    #: The idempotency key (a lowercase UUID); the submitter generates one when absent.
    job_id: str | None = None
    project_id: str
    request_id: str | None = None
    dry_run: bool = False
    preview_request: PreviewRequest

    def to_json(self) -> dict[str, Any]:
        """The camelCase JSON form with every default filled in.

        This is the form stored and sent to workers; it is itself a valid request
        body and :meth:`from_json` turns it back into an equal :class:`JobRequest`.
        ``output`` stays a preset name when the request used one.
        """
        data: dict[str, Any] = CONVERTER.unstructure(self)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobRequest:
        """Rebuild a request from :meth:`to_json` output (trusted: types only, no limits).

        Limits may have changed since the request was accepted; a stored job is
        not re-judged. Raises :class:`ValidationError` if the types are wrong.
        """
        return structure(data, cls)


# --- the JSON form -------------------------------------------------------------


def _output_hook(converter: Converter, *, lenient: bool = False) -> Hook:
    """``output``: a preset name or ``{"width", "height", "fps"}`` (all required).

    ``lenient``: an unknown preset or another type is :data:`UNKNOWN`, a
    missing size is structured from :data:`UNKNOWN`.
    """
    from_object = make_dict_structure_fn(OutputSettings, converter, preset=override(omit=True))
    sizes = {"width": UNKNOWN, "height": UNKNOWN, "fps": UNKNOWN}

    def structure(value: object, _: type) -> Any:
        if type(value) is dict:
            return from_object(sizes | value if lenient else value, OutputSettings)
        if type(value) is str and value in OUTPUT_PRESETS:
            return OutputSettings.from_preset(value)
        if lenient:
            return UNKNOWN
        if type(value) is str:
            presets = ", ".join(OUTPUT_PRESETS)
            raise Invalid(f"unknown preset '{value}'; expected one of {presets}")
        raise expected(value, "a preset name or an object with width, height and fps")

    return structure


def _unstructure_output(output: OutputSettings) -> str | dict[str, int]:
    if output.preset is not None:
        return output.preset
    return {"width": output.width, "height": output.height, "fps": output.fps}


def _build_converter(*, lenient: bool = False) -> Converter:
    """The strict converter of the request classes, or (``lenient``) the one that structures what it can.

    The lenient converter never raises for bad input: it keeps :data:`UNKNOWN`
    where a value is missing or of the wrong type and ignores unknown keys.
    """
    converter = make_converter(lenient=lenient)
    # A class's function resolves its fields' hooks when generated: leaves first.
    asset_type = override(rename="type", struct_hook=choice_hook(ASSET_TYPES, lenient=lenient))
    objects = functools.partial(object_hook, converter, lenient=lenient)
    converter.register_structure_hook(Asset, objects(Asset, type=asset_type))
    converter.register_structure_hook(Step, objects(Step))
    converter.register_structure_hook(AudioTrack, objects(AudioTrack))
    converter.register_structure_hook(OutputSettings, _output_hook(converter, lenient=lenient))
    for item_type in (Step, Asset):
        converter.register_structure_hook_func(is_tuple_of(item_type), array_hook(converter, item_type, lenient=lenient))
    converter.register_structure_hook(PreviewRequest, objects(PreviewRequest))
    converter.register_structure_hook(JobRequest, objects(JobRequest))

    converter.register_unstructure_hook(OutputSettings, _unstructure_output)
    for cls in (Asset, Step, AudioTrack, PreviewRequest, JobRequest):
        converter.register_unstructure_hook(cls, make_dict_unstructure_fn(cls, converter, **camel_renames(cls)))
    return converter


#: Structures the request classes strictly (raising :data:`STRUCTURE_ERRORS`) and unstructures them.
CONVERTER = _build_converter()
#: Structures what it can, never raising: the checks' input when the strict pass failed.
LENIENT_CONVERTER = _build_converter(lenient=True)


def structure(data: object, cls: type[_T]) -> _T:
    """``data`` structured strictly as ``cls``; raises :class:`ValidationError` naming every type problem."""
    try:
        return CONVERTER.structure(data, cls)
    except STRUCTURE_ERRORS as exc:
        raise ValidationError(field_errors(exc)) from None
