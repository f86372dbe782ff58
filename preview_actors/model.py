"""The job request: frozen attrs classes, structured from parsed JSON and validated.

Two passes, both collecting every problem before raising one
:class:`~preview_actors.errors.ValidationError`:

1. *Structure* with a strict cattrs converter: camelCase keys, unknown keys
   refused, missing required keys named, no coercion (``"3000"``, ``true`` and
   ``3000.0`` are not integers; NaN and Infinity are not numbers; ``null`` only
   where a field is optional).
2. *Check* the structured request against :class:`~preview_actors.limits.Limits`
   and its own cross references (step ids unique, assets that exist and fit),
   normalizing on the way (lowercase jobId and colours).

Type errors do not hide the rest: when pass 1 fails, a lenient converter
structures what it can, with :data:`UNKNOWN` where a value is missing or of
the wrong type, and pass 2 checks that. A check skips an unknown value and
whatever depends on it (no "unknown asset" once an asset's id is unknown, no
total duration once a step's is), so each problem is reported once: the type
errors first, then the others.

Field paths use the JSON's own spelling: ``previewRequest.steps[2].durationMs``.
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import hashlib
import json
import math
import re
import urllib.parse
from collections.abc import Callable
from typing import Any, Literal, TypeVar, get_args

import attrs
from cattrs import Converter
from cattrs.errors import (
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from .errors import FieldError, PreviewError, ValidationError
from .limits import Limits

__all__ = [
    "OUTPUT_PRESETS",
    "Asset",
    "AssetType",
    "AudioTrack",
    "JobRequest",
    "OutputSettings",
    "PreviewRequest",
    "Step",
    "UriError",
    "UriKind",
    "canonical_json",
    "classify_uri",
    "content_sha256",
    "decode_data_uri",
    "parse_job_request",
    "parse_preview_request",
]

#: Output presets: name -> (width px, height px, frames per second).
OUTPUT_PRESETS: dict[str, tuple[int, int, int]] = {
    "preview": (640, 360, 24),
    "sd": (854, 480, 30),
    "hd": (1280, 720, 30),
    "fhd": (1920, 1080, 30),
}
DEFAULT_PRESET = "preview"
DEFAULT_BACKGROUND = "#000000"
#: Audio volume range (a gain factor; 1.0 leaves the track as it is).
MIN_VOLUME, MAX_VOLUME = 0.0, 2.0
MAX_REQUEST_ID_CHARS = 128

_T = TypeVar("_T")

AssetType = Literal["image", "video", "audio"]
_ASSET_TYPES: tuple[str, ...] = get_args(AssetType)
_VISUAL_TYPES = frozenset({"image", "video"})


# --- the request ---------------------------------------------------------------


@attrs.frozen(kw_only=True)
class OutputSettings:
    """Video size and frame rate; ``preset`` names the preset they came from, if any."""

    width: int  #: pixels
    height: int  #: pixels
    fps: int  #: frames per second
    preset: str | None = None

    @classmethod
    def from_preset(cls, name: str) -> OutputSettings:
        width, height, fps = OUTPUT_PRESETS[name]
        return cls(width=width, height=height, fps=fps, preset=name)


@attrs.frozen(kw_only=True)
class Asset:
    id: str
    type: AssetType
    #: A path relative to PREVIEW_ASSET_ROOT, a ``data:`` URI or an allowed http(s) URL.
    uri: str
    #: Expected sha256 of the content, 64 lowercase hex characters.
    sha256: str | None = None


@attrs.frozen(kw_only=True)
class Step:
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
    #: The id of an audio asset.
    asset: str
    volume: float = 1.0
    fade_in_ms: int = 0
    fade_out_ms: int = 0


@attrs.frozen(kw_only=True)
class PreviewRequest:
    chapter_id: str
    output: OutputSettings = OutputSettings.from_preset(DEFAULT_PRESET)
    steps: tuple[Step, ...]
    assets: tuple[Asset, ...] = ()
    audio: AudioTrack | None = None

    @property
    def total_duration_ms(self) -> int:
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
        data: dict[str, Any] = _converter.unstructure(self)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobRequest:
        """Rebuild a request from :meth:`to_json` output (trusted: types only, no limits).

        Limits may have changed since the request was accepted; a stored job is
        not re-judged. Raises :class:`ValidationError` if the types are wrong.
        """
        return _structure(data, cls)


# --- parsing -------------------------------------------------------------------


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
        structured = _converter.structure(data, cls)
    except (ClassValidationError, IterableValidationError, _Invalid) as exc:
        type_errors = _field_errors(exc, "")
        salvaged = _lenient_converter.structure(data, cls)
        if salvaged is not UNKNOWN:
            check(salvaged)
        raise ValidationError([*type_errors, *checker.errors]) from None
    checked = check(structured)
    checker.raise_if_any()
    return checked


#: One encoder for every canonical document (``json.dumps`` with options builds one per call).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_json(data: object) -> bytes:
    """The canonical JSON of ``data``: sorted keys, compact, UTF-8 (not ASCII-escaped)."""
    return _CANONICAL.encode(data).encode("utf-8")


def content_sha256(request: JobRequest) -> str:
    """The sha256 (hex) of the canonical JSON of the request's *content*.

    DESIGN calls two bodies "the same" when their canonical JSON is equal. We
    hash the normalized request (:meth:`JobRequest.to_json`, every default
    filled in) rather than the raw body, and leave out ``jobId`` and
    ``requestId``: so ``"dryRun": false`` equals an absent ``dryRun``,
    ``"#ABC"`` equals ``"#aabbcc"``, and a retry under a new request id is the
    same job. A preset name and the equal explicit ``{width, height, fps}`` are
    *different* content (the preset name is kept as sent).
    """
    return content_sha256_of_json(request.to_json())


def content_sha256_of_json(data: dict[str, Any]) -> str:
    """:func:`content_sha256` of a request already in its :meth:`JobRequest.to_json` form."""
    content = {name: value for name, value in data.items() if name not in ("jobId", "requestId")}
    return hashlib.sha256(canonical_json(content)).hexdigest()


# --- asset URIs ----------------------------------------------------------------


class UriKind(str, enum.Enum):
    """Where an asset comes from, as judged from its ``uri`` alone."""

    PATH = "path"  #: relative to PREVIEW_ASSET_ROOT
    DATA = "data"  #: an inline ``data:`` URI
    HTTP = "http"  #: an http(s) URL on an allowed host


class UriError(PreviewError):
    """An asset ``uri`` is refused; ``reason`` says why (no field path)."""

    def __init__(self, uri: str, reason: str) -> None:
        super().__init__(reason)
        self.uri = uri
        self.reason = reason


_USE_RELATIVE = "use a path relative to PREVIEW_ASSET_ROOT"
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_WINDOWS_DRIVE = re.compile(r"[A-Za-z]:(?:[\\/]|$)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # \t and \n allowed
_TOKEN_CHAR = r"[A-Za-z0-9!#$&'*+.^_`|~\-]"
_TOKEN = _TOKEN_CHAR + "+"
_DATA_META = re.compile(
    rf"(?:{_TOKEN}/{_TOKEN})?(?:;{_TOKEN}=(?:{_TOKEN_CHAR}|%[0-9A-Fa-f]{{2}})*)*(;base64)?",
    re.IGNORECASE,
)
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def classify_uri(
    uri: str,
    allowed_hosts: frozenset[str] = frozenset(),
    limits: Limits = Limits(),
) -> UriKind:
    """Judge an asset ``uri`` from the request alone; raise :class:`UriError` if refused.

    Whether a path exists or a download decodes is for the render stage.
    ``allowed_hosts`` are compared lowercased, without port.
    """
    if not uri:
        raise UriError(uri, "must not be empty")
    control = _CONTROL.search(uri)
    if control:
        found = _codepoint(control.group())
        raise UriError(uri, f"must not contain control characters (found {found})")
    if _WINDOWS_DRIVE.match(uri):
        raise UriError(uri, "Windows drive paths are not allowed; use a relative POSIX path")
    scheme_match = _SCHEME.match(uri)
    if scheme_match is None:
        _check_relative_path(uri)
        return UriKind.PATH
    scheme = scheme_match.group(1).lower()
    if scheme == "data":
        data = decode_data_uri(uri)
        if len(data) > limits.max_data_uri_bytes:
            raise UriError(
                uri,
                f"data: URI decodes to {len(data)} bytes, more than {limits.max_data_uri_bytes}",
            )
        return UriKind.DATA
    if scheme in ("http", "https"):
        _check_url(uri, allowed_hosts)
        return UriKind.HTTP
    if scheme == "file":
        raise UriError(uri, f"file: URIs are not allowed; {_USE_RELATIVE}")
    raise UriError(
        uri, f"scheme '{scheme}:' is not allowed; use a relative path, a data: URI or http(s)"
    )


def decode_data_uri(uri: str) -> bytes:
    """The bytes of a ``data:[<mediatype>][;base64],<data>`` URI.

    Raises :class:`UriError` if it is malformed or empty. No size limit here:
    :func:`classify_uri` applies ``Limits.max_data_uri_bytes``.
    """
    if uri[:5].lower() != "data:":
        raise UriError(uri, "not a data: URI")
    meta, comma, payload = uri[5:].partition(",")
    if not comma:
        raise UriError(uri, "malformed data: URI (no ',' before the data)")
    meta_match = _DATA_META.fullmatch(meta)
    if meta_match is None:
        raise UriError(uri, "malformed data: URI (bad media type)")
    if _BAD_PERCENT.search(payload):
        raise UriError(uri, "malformed data: URI (bad %-escape)")
    raw = urllib.parse.unquote_to_bytes(payload)
    if meta_match.group(1):
        try:
            raw = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise UriError(uri, "malformed data: URI (invalid base64)") from None
    if not raw:
        raise UriError(uri, "data: URI has no data")
    return raw


def _check_relative_path(path: str) -> None:
    if "\\" in path:
        raise UriError(path, "backslashes are not allowed in an asset path")
    if path.startswith("/"):
        raise UriError(path, f"absolute paths are not allowed; {_USE_RELATIVE}")
    if path.startswith("~"):
        raise UriError(path, "'~' is not allowed at the start of an asset path")
    if ".." in path.split("/"):
        raise UriError(path, "'..' is not allowed in an asset path")


def _check_url(url: str, allowed_hosts: frozenset[str]) -> None:
    # Characters parsers disagree about (``http://a\@b/``) are refused outright.
    if "\\" in url or any(ch.isspace() for ch in url):
        raise UriError(url, "backslashes and spaces are not allowed in an asset URL")
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as exc:  # "Invalid IPv6 URL", NFKC tricks in the host
        raise UriError(url, f"malformed URL ({exc})") from None
    if not parts.netloc:
        raise UriError(url, "must be an absolute http(s) URL with a host")
    if "@" in parts.netloc:
        raise UriError(url, "credentials (user:password@) are not allowed in an asset URL")
    try:
        parts.port  # noqa: B018 - validates the port
    except ValueError:
        raise UriError(url, "invalid port in asset URL") from None
    host = (parts.hostname or "").lower()
    if not host:
        raise UriError(url, "must be an absolute http(s) URL with a host")
    if host not in {allowed.lower() for allowed in allowed_hosts}:
        raise UriError(url, f"host '{host}' is not in PREVIEW_ASSET_ALLOWED_HOSTS")


# --- pass 2: limits and cross references ---------------------------------------

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]*")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_REQUEST_ID = re.compile(r"[\x21-\x7e]+")
_COLOUR = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class _Unknown:
    """The type of :data:`UNKNOWN`."""

    def __repr__(self) -> str:
        return "UNKNOWN"


#: What the lenient converter puts where a value is missing or of the wrong
#: type (the strict pass has reported it): the checks skip it. Typed ``Any``
#: because it stands in for a value of any field's type.
UNKNOWN: Any = _Unknown()


def _known(value: object) -> bool:
    return value is not UNKNOWN


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _codepoint(char: str) -> str:
    return f"U+{ord(char):04X}"


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
        if job_id is not None and _known(job_id):
            if _UUID.fullmatch(job_id):
                job_id = job_id.lower()
            else:
                self.error("jobId", "must be a UUID like 123e4567-e89b-42d3-a456-426614174000")
        self.identifier("projectId", request.project_id)
        if request.request_id is not None and _known(request.request_id):
            if not request.request_id:
                self.error("requestId", "must not be empty")
            elif len(request.request_id) > MAX_REQUEST_ID_CHARS:
                self.error("requestId", f"must be at most {MAX_REQUEST_ID_CHARS} characters")
            elif not _REQUEST_ID.fullmatch(request.request_id):
                self.error("requestId", "must be printable ASCII without spaces")
        if not _known(request.preview_request):
            return request
        preview = self.preview_request(request.preview_request, "previewRequest")
        return attrs.evolve(request, job_id=job_id, preview_request=preview)

    def preview_request(self, preview: PreviewRequest, path: str) -> PreviewRequest:
        limits = self.limits
        self.identifier(_join(path, "chapterId"), preview.chapter_id)
        if _known(preview.output):
            self.output(_join(path, "output"), preview.output)

        assets = _AssetIndex()
        assets_path = _join(path, "assets")
        if not _known(preview.assets):
            assets.complete = False
        elif len(preview.assets) > limits.max_assets:
            self.error(assets_path, f"must have at most {limits.max_assets} assets")
        for index, asset in enumerate(preview.assets if _known(preview.assets) else ()):
            self.asset(f"{assets_path}[{index}]", asset, assets)

        steps_path = _join(path, "steps")
        sent_steps: tuple[Step, ...] = preview.steps if _known(preview.steps) else ()
        if not _known(preview.steps):
            pass
        elif not preview.steps:
            self.error(steps_path, "must have at least one step")
        elif len(preview.steps) > limits.max_steps:
            self.error(steps_path, f"must have at most {limits.max_steps} steps")
        step_ids: set[str] = set()
        steps = tuple(
            self.step(f"{steps_path}[{index}]", step, step_ids, assets)
            for index, step in enumerate(sent_steps)
        )
        # The total is known only when every duration is.
        total_ms: int | None = None
        if _known(preview.steps) and all(_known(step) and _known(step.duration_ms) for step in steps):
            total_ms = sum(step.duration_ms for step in steps)
            if total_ms > limits.max_total_duration_ms:
                self.error(
                    steps_path,
                    f"total duration {total_ms} ms must be at most {limits.max_total_duration_ms} ms",
                )
        if preview.audio is not None and _known(preview.audio):
            self.audio(_join(path, "audio"), preview.audio, assets, total_ms)
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
            if self.in_range(_join(path, name), value, low, high) and name != "fps" and value % 2:
                self.error(_join(path, name), "must be an even number (H.264 4:2:0)")

    def asset(self, path: str, asset: Asset, assets: _AssetIndex) -> None:
        if not _known(asset):
            assets.complete = False
            return
        if not _known(asset.id):
            assets.complete = False
        elif self.identifier(_join(path, "id"), asset.id):
            if asset.id in assets.types:
                self.error(_join(path, "id"), f"duplicate asset id '{asset.id}'")
            else:
                assets.types[asset.id] = asset.type
        if _known(asset.uri):
            try:
                classify_uri(asset.uri, self.allowed_hosts, self.limits)
            except UriError as exc:
                self.error(_join(path, "uri"), exc.reason)
        if asset.sha256 is not None and _known(asset.sha256) and not _SHA256.fullmatch(asset.sha256):
            self.error(_join(path, "sha256"), "must be 64 lowercase hex characters")

    def step(self, path: str, step: Step, step_ids: set[str], assets: _AssetIndex) -> Step:
        if not _known(step):
            return step
        limits = self.limits
        if self.identifier(_join(path, "id"), step.id):
            if step.id in step_ids:
                self.error(_join(path, "id"), f"duplicate step id '{step.id}'")
            step_ids.add(step.id)
        self.in_range(
            _join(path, "durationMs"),
            step.duration_ms,
            limits.min_step_duration_ms,
            limits.max_step_duration_ms,
        )
        if step.title is not None:
            self.text(_join(path, "title"), step.title, limits.max_title_chars, _CONTROL)
        if step.text is not None:
            self.text(_join(path, "text"), step.text, limits.max_text_chars, _TEXT_CONTROL)
        if step.asset is not None and _known(step.asset):
            asset_type = assets.type_of(step.asset)
            if asset_type is None:
                if assets.complete:
                    self.error(_join(path, "asset"), f"unknown asset '{step.asset}'")
            elif asset_type not in _VISUAL_TYPES and _known(asset_type):
                self.error(
                    _join(path, "asset"),
                    f"asset '{step.asset}' is {asset_type}; a step shows an image or video",
                )
        background = step.background
        if not _known(background):
            pass
        elif _COLOUR.fullmatch(background):
            background = background.lower()
            if len(background) == 4:
                background = "#" + "".join(2 * digit for digit in background[1:])
        else:
            self.error(_join(path, "background"), "must be a colour like '#102030' or '#123'")
        return step if background == step.background else attrs.evolve(step, background=background)

    def audio(
        self, path: str, audio: AudioTrack, assets: _AssetIndex, total_ms: int | None
    ) -> None:
        """Check the audio track; ``total_ms`` is the steps' total duration, None when unknown."""
        asset_type = assets.type_of(audio.asset) if _known(audio.asset) else UNKNOWN
        if asset_type is None:
            if assets.complete:
                self.error(_join(path, "asset"), f"unknown asset '{audio.asset}'")
        elif asset_type != "audio" and _known(asset_type):
            message = f"asset '{audio.asset}' is {asset_type}; audio needs an audio asset"
            self.error(_join(path, "asset"), message)
        if _known(audio.volume) and not MIN_VOLUME <= audio.volume <= MAX_VOLUME:
            self.error(_join(path, "volume"), f"must be between {MIN_VOLUME} and {MAX_VOLUME}")
        fades_ok = self.in_range(_join(path, "fadeInMs"), audio.fade_in_ms, 0, None)
        fades_ok &= self.in_range(_join(path, "fadeOutMs"), audio.fade_out_ms, 0, None)
        if fades_ok and total_ms:  # no steps: reported already
            fades_ms = audio.fade_in_ms + audio.fade_out_ms
            if fades_ms > total_ms:
                self.error(
                    path,
                    f"fadeInMs + fadeOutMs ({fades_ms} ms) must be at most"
                    f" the total duration ({total_ms} ms)",
                )

    def identifier(self, path: str, value: str) -> bool:
        if not _known(value):
            return False
        if not value:
            self.error(path, "must not be empty")
        elif len(value) > self.limits.max_id_chars:
            self.error(path, f"must be at most {self.limits.max_id_chars} characters")
        elif not _ID.fullmatch(value):
            self.error(
                path,
                "must start with a letter or digit and contain only letters, digits,"
                " '.', '_', ':' and '-'",
            )
        else:
            return True
        return False

    def text(self, path: str, value: str, max_chars: int, control: re.Pattern[str]) -> None:
        if not _known(value):
            return
        if len(value) > max_chars:
            self.error(path, f"must be at most {max_chars} characters")
        found = control.search(value)
        if found:
            codepoint = _codepoint(found.group())
            self.error(path, f"must not contain control characters (found {codepoint})")

    def in_range(self, path: str, value: int, low: int, high: int | None) -> bool:
        """Report ``value`` outside ``low..high``; True when it is known and inside."""
        if not _known(value):
            return False
        if value < low:
            self.error(path, f"must be at least {low}")
        elif high is not None and value > high:
            self.error(path, f"must be at most {high}")
        else:
            return True
        return False


# --- pass 1: the strict converter ----------------------------------------------


class _Invalid(ValueError):
    """A value of the wrong type or form; the message is shown as is."""


def _expected(value: object, what: str) -> _Invalid:
    return _Invalid("must not be null" if value is None else f"must be {what}")


def _structure_int(value: object, _: type) -> int:
    # type() rather than isinstance(): bool is an int subclass, and 3000.0 is a float.
    if type(value) is not int:
        raise _expected(value, "an integer")
    return value


def _structure_float(value: object, _: type) -> float:
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:
            raise _Invalid("must be a finite number") from None
    if type(value) is not float:
        raise _expected(value, "a number")
    if not math.isfinite(value):
        raise _Invalid("must be a finite number")
    return value


def _structure_str(value: object, _: type) -> str:
    if type(value) is not str:
        raise _expected(value, "a string")
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate such as "\ud800"
        raise _Invalid("must be valid Unicode (no lone surrogates)") from None
    return value


def _structure_bool(value: object, _: type) -> bool:
    if type(value) is not bool:
        raise _expected(value, "true or false")
    return value


def _structure_asset_type(value: object, _: type) -> str:
    kind = _structure_str(value, str)
    if kind not in _ASSET_TYPES:
        raise _Invalid("must be one of " + ", ".join(repr(name) for name in _ASSET_TYPES))
    return kind


def _camel(name: str) -> str:
    return re.sub(r"_([a-z0-9])", lambda match: match.group(1).upper(), name)


def _renames(cls: type) -> dict[str, Any]:
    return {field.name: override(rename=_camel(field.name)) for field in attrs.fields(cls)}


def _object_hook(
    converter: Converter, cls: type, *, lenient: bool = False, **overrides: Any
) -> Callable[[object, type], Any]:
    """A structure hook for ``cls`` from a JSON object with camelCase keys.

    ``lenient``: anything but an object is :data:`UNKNOWN`, and a missing
    required key is structured from :data:`UNKNOWN` (which its hook keeps).
    """
    generated: Callable[[Any, Any], Any] = make_dict_structure_fn(cls, converter, **(_renames(cls) | overrides))
    required = {
        _camel(field.name): UNKNOWN
        for field in attrs.fields(cls)
        if field.default is attrs.NOTHING
    }

    def structure(value: object, _: type) -> Any:
        if type(value) is not dict:
            if lenient:
                return UNKNOWN
            raise _expected(value, "an object")
        return generated(required | value if lenient else value, cls)

    return structure


def _array_hook(
    converter: Converter, item_type: type, *, lenient: bool = False
) -> Callable[[object, type], tuple[Any, ...]]:
    """A structure hook for ``tuple[item_type, ...]`` from a JSON array (and nothing else).

    ``lenient``: anything but an array is :data:`UNKNOWN` (so are items, by their own hook).
    """
    item_hook = converter.get_structure_hook(item_type)

    def structure(value: object, tuple_type: type) -> Any:
        if type(value) is not list:
            if lenient:
                return UNKNOWN
            raise _expected(value, "an array")
        if lenient:
            return tuple(item_hook(item, item_type) for item in value)
        items: list[Any] = []
        errors: list[Exception] = []
        for index, item in enumerate(value):
            try:
                items.append(item_hook(item, item_type))
            except Exception as exc:  # regrouped, as cattrs does
                note = IterableValidationNote(f"Structuring @ index {index}", index, item_type)
                # __notes__ is typed from Python 3.11 on; cattrs reads it on 3.10 as well.
                exc.__notes__ = [*getattr(exc, "__notes__", []), note]  # type: ignore[attr-defined]
                errors.append(exc)
        if errors:
            raise IterableValidationError(f"While structuring {tuple_type!r}", errors, tuple_type)
        return tuple(items)

    return structure


def _output_hook(converter: Converter, *, lenient: bool = False) -> Callable[[object, type], Any]:
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
            raise _Invalid(f"unknown preset '{value}'; expected one of {presets}")
        raise _expected(value, "a preset name or an object with width, height and fps")

    return structure


def _is_tuple_of(item_type: type) -> Callable[[Any], bool]:
    """A cattrs predicate for ``tuple[item_type, ...]``."""
    return lambda type_: bool(type_ == tuple[item_type, ...])  # type: ignore[valid-type]  # built at run time from a variable item type


def _lenient(hook: Callable[[object, type], _T]) -> Callable[[object, type], Any]:
    """``hook``, with :data:`UNKNOWN` for a value it refuses."""

    def structure(value: object, type_: type) -> Any:
        try:
            return hook(value, type_)
        except _Invalid:
            return UNKNOWN

    return structure


def _unstructure_output(output: OutputSettings) -> str | dict[str, int]:
    if output.preset is not None:
        return output.preset
    return {"width": output.width, "height": output.height, "fps": output.fps}


def _build_converter(*, lenient: bool = False) -> Converter:
    """The strict converter of pass 1, or (``lenient``) the one that structures what it can.

    The lenient converter never raises for bad input: it keeps :data:`UNKNOWN`
    where a value is missing or of the wrong type and ignores unknown keys.
    """
    converter = Converter(forbid_extra_keys=not lenient, detailed_validation=not lenient)
    leaf = _lenient if lenient else (lambda hook: hook)
    converter.register_structure_hook(int, leaf(_structure_int))
    converter.register_structure_hook(float, leaf(_structure_float))
    converter.register_structure_hook(str, leaf(_structure_str))
    converter.register_structure_hook(bool, leaf(_structure_bool))
    # A class's function resolves its fields' hooks when generated: leaves first.
    asset_type = override(rename="type", struct_hook=leaf(_structure_asset_type))
    objects = functools.partial(_object_hook, converter, lenient=lenient)
    converter.register_structure_hook(Asset, objects(Asset, type=asset_type))
    converter.register_structure_hook(Step, objects(Step))
    converter.register_structure_hook(AudioTrack, objects(AudioTrack))
    converter.register_structure_hook(OutputSettings, _output_hook(converter, lenient=lenient))
    for item_type in (Step, Asset):
        converter.register_structure_hook_func(
            _is_tuple_of(item_type), _array_hook(converter, item_type, lenient=lenient)
        )
    converter.register_structure_hook(PreviewRequest, objects(PreviewRequest))
    converter.register_structure_hook(JobRequest, objects(JobRequest))

    converter.register_unstructure_hook(OutputSettings, _unstructure_output)
    for cls in (Asset, Step, AudioTrack, PreviewRequest, JobRequest):
        unstructure = make_dict_unstructure_fn(cls, converter, **_renames(cls))
        converter.register_unstructure_hook(cls, unstructure)
    return converter


_converter = _build_converter()
#: Pass 2's input when pass 1 failed: see :data:`UNKNOWN`.
_lenient_converter = _build_converter(lenient=True)


def _structure(data: object, cls: type[_T]) -> _T:
    try:
        return _converter.structure(data, cls)
    except (ClassValidationError, IterableValidationError, _Invalid) as exc:
        raise ValidationError(_field_errors(exc, "")) from None


def _field_errors(exc: BaseException, path: str) -> list[FieldError]:
    """cattrs' exception groups as :class:`FieldError` s with JSON paths (``a.b[2].c``).

    Like :func:`cattrs.transform_error`, but the path uses the camelCase JSON
    names rather than the attribute names, without the ``$`` root.
    """
    errors: list[FieldError] = []
    if isinstance(exc, ClassValidationError):
        with_notes, without = exc.group_exceptions()
        for sub, note in with_notes:
            errors += _field_errors(sub, _join(path, _camel(note.name)))
        for sub in without:
            errors += _field_errors(sub, path)
    elif isinstance(exc, IterableValidationError):
        with_indices, without_index = exc.group_exceptions()
        for sub, item_note in with_indices:
            errors += _field_errors(sub, f"{path}[{item_note.index}]")
        for sub in without_index:
            errors += _field_errors(sub, path)
    elif isinstance(exc, ForbiddenExtraKeysError):
        for key in sorted(exc.extra_fields, key=str):
            errors.append(FieldError(_join(path, str(key)), "unknown field"))
    elif isinstance(exc, KeyError):
        errors.append(FieldError(path, "is required"))
    elif isinstance(exc, _Invalid):
        errors.append(FieldError(path, str(exc)))
    else:  # a bug in a hook, not bad input
        raise exc
    return errors
