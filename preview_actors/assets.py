"""Resolving a request's asset URIs to local files for the renderer.

What can be judged from the request alone was checked at submit
(:func:`preview_actors.model.classify_uri`); here the render stage finds the
bytes: a file below ``PREVIEW_ASSET_ROOT`` (symlinks may not lead out of it),
a ``data:`` URI written into the attempt's folder, or an ``http(s)`` download
from an allowed host, bounded in size and time.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx

from .errors import PermanentJobError, TransientJobError
from .model import decode_data_uri
from .storage import sha256_of_file

#: Largest asset downloaded over http(s), bytes.
MAX_DOWNLOAD_BYTES = 200 * 1024 * 1024
#: Seconds an asset download may take in all.
DOWNLOAD_TIMEOUT_S = 30.0


def resolve_assets(
    assets: list[dict[str, Any]],
    *,
    asset_root: Path,
    allowed_hosts: frozenset[str],
    work_dir: Path,
) -> dict[str, dict[str, Any]]:
    """Return the spec's ``assets`` mapping: id → {type, path, sha256}."""
    resolved: dict[str, dict[str, Any]] = {}
    root: Path | None = None  # resolved once, when a path below it is first asked for
    for asset in assets:
        asset_id, uri = asset["id"], asset["uri"]
        if uri.startswith("data:"):
            path = _write_data_uri(asset_id, uri, work_dir)
        elif uri.startswith(("http://", "https://")):
            path = _download(asset_id, uri, allowed_hosts, work_dir)
        else:
            root = root or asset_root.resolve()
            path = _below_root(asset_id, uri, root)
        expected = asset.get("sha256")
        if expected:
            actual, _ = sha256_of_file(path)
            if actual != expected:
                raise PermanentJobError(f"asset {asset_id!r}: sha256 is {actual}, the request says {expected}")
        resolved[asset_id] = {"type": asset["type"], "path": str(path), "sha256": expected}
    return resolved


def _below_root(asset_id: str, uri: str, root: Path) -> Path:
    """``uri`` below ``root`` (already resolved), or a permanent error."""
    path = (root / uri).resolve()
    if not path.is_relative_to(root):
        raise PermanentJobError(f"asset {asset_id!r}: {uri!r} leads outside PREVIEW_ASSET_ROOT")
    if not path.is_file():
        raise PermanentJobError(f"asset {asset_id!r}: {uri!r} does not exist below PREVIEW_ASSET_ROOT")
    return path


def _write_data_uri(asset_id: str, uri: str, work_dir: Path) -> Path:
    try:
        data = decode_data_uri(uri)
    except ValueError as error:
        raise PermanentJobError(f"asset {asset_id!r}: {error}") from None
    work_dir.mkdir(parents=True, exist_ok=True)
    path = work_dir / f"{hashlib.sha256(data).hexdigest()}.asset"
    path.write_bytes(data)
    return path


def _download(asset_id: str, uri: str, allowed_hosts: frozenset[str], work_dir: Path) -> Path:
    host = httpx.URL(uri).host.lower()
    if host not in allowed_hosts:
        raise PermanentJobError(f"asset {asset_id!r}: host {host!r} is not in PREVIEW_ASSET_ALLOWED_HOSTS")
    work_dir.mkdir(parents=True, exist_ok=True)
    path = work_dir / f"{hashlib.sha256(uri.encode()).hexdigest()}.download"
    partial = path.with_suffix(".part")
    try:
        with httpx.stream("GET", uri, timeout=DOWNLOAD_TIMEOUT_S, follow_redirects=False) as response:
            if 400 <= response.status_code < 500:
                raise PermanentJobError(f"asset {asset_id!r}: {uri} answered {response.status_code}")
            if response.status_code != 200:
                raise TransientJobError(f"asset {asset_id!r}: {uri} answered {response.status_code}")
            received = 0
            with open(partial, "wb") as file:
                for chunk in response.iter_bytes():
                    received += len(chunk)
                    if received > MAX_DOWNLOAD_BYTES:
                        raise PermanentJobError(f"asset {asset_id!r}: larger than {MAX_DOWNLOAD_BYTES} bytes")
                    file.write(chunk)
    except httpx.HTTPError as error:
        partial.unlink(missing_ok=True)
        raise TransientJobError(f"asset {asset_id!r}: download failed: {error}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(path)
    return path
