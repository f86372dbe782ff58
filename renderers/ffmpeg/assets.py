"""Assets, resolved and checked before anything is rendered.

Every asset must exist, be a regular file within the size limit, match its
declared sha256 (when given), and decode: images with Pillow (fully, at the
reduced scale a JPEG allows), videos and audio by a header probe with ffmpeg.
A failure is :class:`~renderers.protocol.BadInput` naming the asset by its id
and the request's uri, never by a path: ``asset 'cover' (uri
images/cover.png): not a decodable image (…)``.
"""

from __future__ import annotations

import hashlib
import os
import stat
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from renderers.ffmpeg import images
from renderers.ffmpeg.probe import MediaInfo, ProbeError, probe
from renderers.ffmpeg.spec import Asset, Output, Spec
from renderers.protocol import BadInput

#: Largest asset file, in bytes.
MAX_ASSET_BYTES = 1 << 30
#: Largest image, in pixels (width × height), checked before decoding.
MAX_IMAGE_PIXELS = 50_000_000
#: Largest video frame side, in pixels.
MAX_VIDEO_SIDE_PX = 8192
#: Read size when hashing, in bytes.
HASH_CHUNK_BYTES = 1 << 20


@dataclass
class ResolvedAsset:
    asset: Asset
    sha256: str
    size_bytes: int
    #: Decoded image (RGB, or RGBA when it has transparency), for image assets.
    image: Image.Image | None = None
    #: Probed streams, for video and audio assets.
    media: MediaInfo | None = None

    @property
    def id(self) -> str:
        return self.asset.id


def resolve_assets(spec: Spec, ffmpeg: str) -> dict[str, ResolvedAsset]:
    resolved = {asset_id: _check_file(asset) for asset_id, asset in spec.assets.items()}
    for item in resolved.values():
        if item.asset.type == "image":
            item.image = decode_image(item.asset, spec.output)
    media = [item for item in resolved.values() if item.asset.type in ("video", "audio")]
    try:
        infos = probe(ffmpeg, [item.asset.path for item in media])
    except ProbeError as error:
        culprit = next((item for item in media if item.asset.path == error.path), None)
        if culprit is None:
            raise BadInput(f"a video or audio asset is not a decodable file ({error.reason})") from None
        raise BadInput(culprit.asset.problem(f"not a decodable {culprit.asset.type} file ({error.reason})")) from None
    for item, info in zip(media, infos, strict=True):
        item.media = info
        _check_media(item)
    return resolved


def _check_file(asset: Asset) -> ResolvedAsset:
    try:
        info = os.stat(asset.path)
    except FileNotFoundError:
        raise BadInput(asset.problem("file not found")) from None
    except OSError as error:
        raise BadInput(asset.problem(f"cannot be read ({error.strerror})")) from None
    if not stat.S_ISREG(info.st_mode):
        raise BadInput(asset.problem("not a regular file"))
    if info.st_size == 0:
        raise BadInput(asset.problem("the file is empty"))
    if info.st_size > MAX_ASSET_BYTES:
        raise BadInput(asset.problem(f"{info.st_size} bytes exceeds the limit of {MAX_ASSET_BYTES}"))
    digest = hashlib.sha256()
    try:
        with open(asset.path, "rb") as file:
            while chunk := file.read(HASH_CHUNK_BYTES):
                digest.update(chunk)
    except OSError as error:
        raise BadInput(asset.problem(f"cannot be read ({error.strerror})")) from None
    sha256 = digest.hexdigest()
    if asset.sha256 is not None and asset.sha256 != sha256:
        raise BadInput(asset.problem(f"sha256 mismatch (declared {asset.sha256}, file has {sha256})"))
    return ResolvedAsset(asset, sha256, info.st_size)


def decode_image(asset: Asset, output: Output) -> Image.Image:
    """Decode fully (a truncated file fails here), as displayed (:mod:`~renderers.ffmpeg.images`): RGB or RGBA."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(asset.path)
        with image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise BadInput(asset.problem(f"{width}x{height} image exceeds {MAX_IMAGE_PIXELS} pixels"))
            image.draft("RGB", (output.width, output.height))  # JPEG: decode at a reduced scale
            image.load()
            return images.displayed(image)  # upright, square pixels, 8 bits, sRGB
    except BadInput:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise BadInput(asset.problem(f"not a decodable image ({error})")) from None


def _check_media(item: ResolvedAsset) -> None:
    info = item.media
    assert info is not None
    if item.asset.type == "video":
        if info.video is None:
            raise BadInput(item.asset.problem("not a decodable video file (no video stream)"))
        if max(info.video.width, info.video.height) > MAX_VIDEO_SIDE_PX or min(info.video.width, info.video.height) < 1:
            raise BadInput(item.asset.problem(f"{info.video.width}x{info.video.height} video is out of bounds"))
    elif info.audio is None:
        raise BadInput(item.asset.problem("not a decodable audio file (no audio stream)"))
