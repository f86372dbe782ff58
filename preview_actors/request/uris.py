"""The rules for an asset's ``uri``: a relative path, a ``data:`` URI or an allowed http(s) URL.

:func:`classify_uri` judges a ``uri`` from the request alone (at submit);
:func:`decode_data_uri` gives a ``data:`` URI's bytes (at submit and when the
render stage writes the asset out). Both raise
:class:`~preview_actors.errors.UriError`, which is bad input: a field error at
submit, a permanent ``bad_input`` failure at render time.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
import urllib.parse

from ..errors import UriError
from ..limits import Limits

__all__ = ["UriError", "UriKind", "classify_uri", "decode_data_uri"]


class UriKind(str, enum.Enum):
    """Where an asset comes from, as judged from its ``uri`` alone."""

    PATH = "path"  #: relative to PREVIEW_ASSET_ROOT
    DATA = "data"  #: an inline ``data:`` URI
    HTTP = "http"  #: an http(s) URL on an allowed host


#: C0 and C1 control characters, refused in a URI and in a title.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

_USE_RELATIVE = "use a path relative to PREVIEW_ASSET_ROOT"
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_WINDOWS_DRIVE = re.compile(r"[A-Za-z]:(?:[\\/]|$)")
_TOKEN_CHAR = r"[A-Za-z0-9!#$&'*+.^_`|~\-]"
_TOKEN = _TOKEN_CHAR + "+"
_DATA_META = re.compile(
    rf"(?:{_TOKEN}/{_TOKEN})?(?:;{_TOKEN}=(?:{_TOKEN_CHAR}|%[0-9A-Fa-f]{{2}})*)*(;base64)?",
    re.IGNORECASE,
)
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def codepoint(char: str) -> str:
    """``char`` as messages show it: ``U+0007``."""
    return f"U+{ord(char):04X}"


def classify_uri(
    uri: str,
    allowed_hosts: frozenset[str] = frozenset(),
    limits: Limits = Limits(),
) -> UriKind:
    """Judge an asset ``uri`` from the request alone; raise :class:`UriError` if refused.

    Whether a path exists or a download decodes is for the render stage.
    ``allowed_hosts`` are compared lowercased, without port. A ``data:`` URI
    may decode to at most ``limits.max_data_uri_bytes`` bytes.
    """
    if not uri:
        raise UriError(uri, "must not be empty")
    control = CONTROL.search(uri)
    if control:
        found = codepoint(control.group())
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
    raise UriError(uri, f"scheme '{scheme}:' is not allowed; use a relative path, a data: URI or http(s)")


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
