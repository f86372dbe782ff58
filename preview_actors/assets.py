"""Resolving a request's asset URIs to local files for the renderer.

What can be judged from the request alone was checked at submit
(:func:`preview_actors.request.classify_uri`); here the render stage finds the
bytes: a file below ``PREVIEW_ASSET_ROOT`` (symlinks may not lead out of it),
a ``data:`` URI written into the attempt's folder, or an ``http(s)`` download
from an allowed host, bounded in size and time.

An asset that cannot be had is the job's own bad input
(:class:`~preview_actors.errors.BadInputError`, no retry), named by its id and
the request's ``uri`` (:func:`asset_name`) — never by a path of the server,
since the message becomes the job's status. Each resolved asset carries that
``uri`` to the renderer, which names assets the same way.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx

from .errors import BadInputError, TransientJobError
from .request import UriError, decode_data_uri
from .storage import sha256_of_file

#: Largest asset downloaded over http(s), bytes.
MAX_DOWNLOAD_BYTES = 200 * 1024 * 1024
#: Seconds an asset download may take in all.
DOWNLOAD_TIMEOUT_S = 30.0
#: Longest ``uri`` quoted in a message, characters (a ``data:`` URI is shown by its media type only).
MAX_SHOWN_URI_CHARS = 200


def shown_uri(uri: str) -> str:
    """``uri`` as messages show it: a ``data:`` URI by its header (``data:image/png;base64,…``),
    an ``http(s)`` URL without its query and fragment (they may carry credentials), anything
    longer than :data:`MAX_SHOWN_URI_CHARS` cut short with ``…``."""
    if uri.startswith("data:"):
        head, comma, _ = uri.partition(",")
        uri = head + (",…" if comma else "")
    elif uri.startswith(("http://", "https://")):
        base = uri.split("#", 1)[0]
        uri = base.split("?", 1)[0] + ("?…" if "?" in base else "")
    return uri if len(uri) <= MAX_SHOWN_URI_CHARS else uri[: MAX_SHOWN_URI_CHARS - 1] + "…"


def asset_name(asset_id: str, uri: str) -> str:
    """How a message names an asset: ``asset 'cover' (uri images/cover.png)``."""
    return f"asset {asset_id!r} (uri {shown_uri(uri)})"


def resolve_assets(
    assets: list[dict[str, Any]],
    *,
    asset_root: Path,
    allowed_hosts: frozenset[str],
    work_dir: Path,
) -> dict[str, dict[str, Any]]:
    """Return the spec's ``assets`` mapping: id → ``{type, path, sha256, uri}`` (``uri`` as :func:`shown_uri`).

    Raises :class:`BadInputError` for an asset that does not exist, leads out
    of ``asset_root``, comes from a host not allowed or answering 4xx, is too
    large or does not match its ``sha256``; :class:`TransientJobError` for a
    download that failed in a way worth retrying.
    """
    resolved: dict[str, dict[str, Any]] = {}
    root: Path | None = None  # resolved once, when a path below it is first asked for
    for asset in assets:
        asset_id, uri = asset["id"], asset["uri"]
        name = asset_name(asset_id, uri)
        if uri.startswith("data:"):
            path = _write_data_uri(name, uri, work_dir)
        elif uri.startswith(("http://", "https://")):
            path = _download(name, uri, allowed_hosts, work_dir)
        else:
            root = root or asset_root.resolve()
            path = _below_root(name, uri, root)
        expected = asset.get("sha256")
        if expected:
            actual, _ = sha256_of_file(path)
            if actual != expected:
                raise BadInputError(f"{name}: sha256 is {actual}, the request says {expected}")
        resolved[asset_id] = {"type": asset["type"], "path": str(path), "sha256": expected, "uri": shown_uri(uri)}
    return resolved


def _below_root(name: str, uri: str, root: Path) -> Path:
    """``uri`` below ``root`` (already resolved), or a :class:`BadInputError`."""
    path = (root / uri).resolve()
    if not path.is_relative_to(root):
        raise BadInputError(f"{name}: leads outside PREVIEW_ASSET_ROOT")
    if not path.is_file():
        raise BadInputError(f"{name}: does not exist below PREVIEW_ASSET_ROOT")
    return path


def _write_data_uri(name: str, uri: str, work_dir: Path) -> Path:
    try:
        data = decode_data_uri(uri)
    except UriError as error:
        raise BadInputError(f"{name}: {error}") from None
    work_dir.mkdir(parents=True, exist_ok=True)
    path = work_dir / f"{hashlib.sha256(data).hexdigest()}.asset"
    path.write_bytes(data)
    return path


def _download(name: str, uri: str, allowed_hosts: frozenset[str], work_dir: Path) -> Path:
    host = httpx.URL(uri).host.lower()
    if host not in allowed_hosts:
        raise BadInputError(f"{name}: host {host!r} is not in PREVIEW_ASSET_ALLOWED_HOSTS")
    work_dir.mkdir(parents=True, exist_ok=True)
    path = work_dir / f"{hashlib.sha256(uri.encode()).hexdigest()}.download"
    partial = path.with_suffix(".part")
    try:
        with httpx.stream("GET", uri, timeout=DOWNLOAD_TIMEOUT_S, follow_redirects=False) as response:
            if 400 <= response.status_code < 500:
                raise BadInputError(f"{name}: answered {response.status_code}")
            if response.status_code != 200:
                raise TransientJobError(f"{name}: answered {response.status_code}")
            received = 0
            with open(partial, "wb") as file:
                for chunk in response.iter_bytes():
                    received += len(chunk)
                    if received > MAX_DOWNLOAD_BYTES:
                        raise BadInputError(f"{name}: larger than {MAX_DOWNLOAD_BYTES} bytes")
                    file.write(chunk)
    except httpx.HTTPError as error:
        partial.unlink(missing_ok=True)
        raise TransientJobError(f"{name}: download failed: {type(error).__name__}: {error}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(path)
    return path
