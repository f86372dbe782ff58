"""Canonical JSON, and the sha256 that tells whether two request bodies are the same job."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .types import JobRequest

__all__ = ["canonical_json", "content_sha256", "content_sha256_of_json"]

#: One encoder for every canonical document (``json.dumps`` with options builds one per call).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_json(data: object) -> bytes:
    """The canonical JSON of ``data``: sorted keys, compact, UTF-8 (not ASCII-escaped).

    Raises ``ValueError`` for NaN or an infinity, ``TypeError`` for a value JSON cannot hold.
    """
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
