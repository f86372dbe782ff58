"""The request model: the bottom layer, importing nothing of preview_actors but its errors and limits.

- :mod:`.types`: the frozen attrs classes and their JSON form;
- :mod:`.converter`: strict cattrs hooks for JSON and the field paths of their errors;
- :mod:`.checks`: :func:`parse_job_request` — limits, cross references, every problem at once;
- :mod:`.uris`: the rules for an asset's ``uri``;
- :mod:`.canonical`: canonical JSON and the content hash that makes submitting idempotent.
"""

from ..errors import UriError
from .canonical import canonical_json, content_sha256, content_sha256_of_json
from .checks import MAX_REQUEST_ID_CHARS, MAX_VOLUME, MIN_VOLUME, parse_job_request, parse_preview_request
from .types import (
    OUTPUT_PRESETS,
    Asset,
    AssetType,
    AudioTrack,
    JobRequest,
    OutputSettings,
    PreviewRequest,
    Step,
)
from .uris import UriKind, classify_uri, decode_data_uri

__all__ = [
    "MAX_REQUEST_ID_CHARS",
    "MAX_VOLUME",
    "MIN_VOLUME",
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
    "content_sha256_of_json",
    "decode_data_uri",
    "parse_job_request",
    "parse_preview_request",
]
