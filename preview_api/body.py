"""Reading a JSON request body: JSON only, bounded in size, parsed strictly.

The size is checked twice: a ``Content-Length`` above the limit is refused
before anything is read, and the bytes are counted while they stream in (a
chunked body has no length; a declared one may lie), so no more than the
limit plus one chunk is ever held.
"""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.requests import ClientDisconnect, Request

from .errors import ApiError

_JSON_TYPES = ("application/json",)


def require_json(request: Request) -> None:
    """415 unless the body is declared JSON (``application/json`` or ``application/*+json``) in UTF-8."""
    raw = request.headers.get("content-type")
    if raw is None:
        raise ApiError(415, "not_json", "the body must be JSON: send Content-Type: application/json")
    media_type, *parameters = (part.strip() for part in raw.split(";"))
    media_type = media_type.lower()
    kind, _, subtype = media_type.partition("/")
    if not (media_type in _JSON_TYPES or (kind == "application" and subtype.endswith("+json") and subtype != "+json")):
        raise ApiError(415, "not_json", f"the body must be JSON, not {media_type or 'an empty media type'!r}")
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise ApiError(415, "not_json", "JSON bodies must be UTF-8")


async def read_bounded(request: Request, max_bytes: int) -> bytes:
    """The whole body, or 413 as soon as it is known to exceed ``max_bytes``."""
    declared = request.headers.get("content-length")
    if declared is not None:
        declared = declared.strip()
        if not declared.isascii() or not declared.isdigit():
            raise ApiError(400, "bad_request", "Content-Length must be a non-negative integer")
        if int(declared) > max_bytes:
            raise _too_large(max_bytes)
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_bytes:
                raise _too_large(max_bytes)
    except ClientDisconnect:
        raise ApiError(400, "bad_request", "the client went away before sending the whole body") from None
    return bytes(body)


def parse_json(body: bytes) -> Any:
    """Strict JSON: UTF-8, no NaN or Infinity, no number out of range, no duplicate keys."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ApiError(400, "invalid_json", f"the body is not valid UTF-8 (byte {error.start})") from None
    try:
        return json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            object_pairs_hook=_unique_keys,
        )
    except RecursionError:
        raise ApiError(400, "invalid_json", "the body is nested too deeply") from None
    except ValueError as error:  # JSONDecodeError and the hooks' refusals
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {error}") from None


def _too_large(max_bytes: int) -> ApiError:
    return ApiError(413, "too_large", f"the body must be at most {max_bytes} bytes")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key[:80]!r}")
        result[key] = value
    return result
