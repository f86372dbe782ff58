"""An image as it is displayed: upright, square pixels, 8 bits, sRGB.

Pillow decodes an image as it is stored; :func:`displayed` turns that into
what a viewer shows:

* **orientation**: the EXIF orientation is applied;
* **pixel aspect ratio**: an aspect-only density (PNG ``pHYs`` with unit 0,
  JFIF density with unit 0: what ffmpeg writes for a frame grab of an
  anamorphic clip, as SAR x:y) is applied by stretching to square pixels;
  densities in real units (dpi) are print sizes, which viewers ignore, and so
  do we;
* **bit depth**: Pillow's 16- and 32-bit modes (``I;16``, ``I``, ``F``) are
  scaled to 8 bits (``convert()`` would clamp them: a 16-bit grey image comes
  out white); 16-bit RGB Pillow already reads as 8-bit;
* **colour**: an embedded ICC profile (Display P3 from phones, Adobe RGB, a
  CMYK press profile…) is converted to sRGB, the step frames' colour space;
  an image without one is taken as sRGB. A profile lcms cannot use is ignored,
  as browsers ignore it.

The result is RGB, or RGBA when the image has transparency.
"""

from __future__ import annotations

import functools
import io
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageOps

if TYPE_CHECKING:
    from PIL import ImageCms

#: Pixel aspect ratios beyond these are taken for broken metadata and ignored.
MIN_PIXEL_ASPECT = 0.25
MAX_PIXEL_ASPECT = 4.0
#: Above this many pixels, square_pixels shrinks the long side of the pixels instead of stretching the short one.
MAX_STRETCHED_PIXELS = 16_000_000
#: EXIF orientations that swap width and height.
_TRANSPOSED_ORIENTATIONS = {5, 6, 7, 8}
_TRANSPARENT_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def displayed(image: Image.Image) -> Image.Image:
    """``image`` (loaded) as a viewer shows it: RGB, or RGBA when it has transparency."""
    aspect = pixel_aspect(image)
    orientation = image.getexif().get(0x0112)
    upright = ImageOps.exif_transpose(image)
    if orientation in _TRANSPOSED_ORIENTATIONS:
        aspect = 1 / aspect
    upright = eight_bit(upright, image)
    upright = square_pixels(upright, aspect)
    transparent = upright.mode in _TRANSPARENT_MODES or "transparency" in upright.info
    icc = image.info.get("icc_profile")
    if icc:
        converted = to_srgb(upright, icc, transparent)
        if converted is not None:
            return converted
    return upright.convert("RGBA" if transparent else "RGB")


def pixel_aspect(image: Image.Image) -> float:
    """Width over height of one stored pixel, from an aspect-only density (1.0 without one)."""
    info = image.info
    density: Any = None
    if "aspect" in info:  # PNG pHYs, unit 0
        density = info["aspect"]
    elif info.get("jfif_unit") == 0 and "jfif_density" in info:  # JFIF, no unit
        density = info["jfif_density"]
    try:
        x, y = (float(value) for value in density) if density is not None else (1.0, 1.0)
    except (TypeError, ValueError):
        return 1.0
    if x <= 0 or y <= 0 or not MIN_PIXEL_ASPECT <= x / y <= MAX_PIXEL_ASPECT:
        return 1.0
    return x / y


def square_pixels(image: Image.Image, aspect: float) -> Image.Image:
    """Pixels ``aspect`` wide (width over height) made square: the image stretched along its
    short-pixel side, or squeezed along the other when stretching would pass MAX_STRETCHED_PIXELS."""
    if abs(aspect - 1.0) < 1e-3:
        return image
    width, height = image.size
    stretched = (round(width * aspect), height) if aspect > 1 else (width, round(height / aspect))
    squeezed = (width, round(height / aspect)) if aspect > 1 else (round(width * aspect), height)
    size = stretched if stretched[0] * stretched[1] <= MAX_STRETCHED_PIXELS else squeezed
    return image.resize((max(1, size[0]), max(1, size[1])), Image.Resampling.BICUBIC)


def eight_bit(image: Image.Image, source: Image.Image) -> Image.Image:
    """Pillow's deep grey modes scaled to ``L`` (``source``: the image as opened, for its format)."""
    mode = image.mode
    if mode.startswith("I;16"):
        return image.convert("I").point(_lut_16_to_8(), "L")
    if mode == "I":
        top = _integer_top(source)
        if top == 65535:
            return image.point(_lut_16_to_8(), "L")
        return image.convert("F").point(lambda value: value * 255 / top + 0.5).convert("L")
    if mode == "F":  # floating point: 0.0 is black, 1.0 white
        return image.point(lambda value: value * 255 + 0.5).convert("L")
    return image


def _integer_top(source: Image.Image) -> int:
    """The white level of an ``I`` image: its samples' full scale (TIFF tags), else 16 bits."""
    tags = getattr(source, "tag_v2", None)
    if tags is not None:
        bits = tags.get(258)
        bits = bits[0] if isinstance(bits, tuple) else bits
        signed = tags.get(339) in (2, (2,))
        if isinstance(bits, int) and 8 < bits <= 32:
            return (1 << (bits - 1 if signed else bits)) - 1
    return 65535


def to_srgb(image: Image.Image, icc: bytes, transparent: bool) -> Image.Image | None:
    """``image`` converted from its ICC profile to sRGB, or None when the profile is unusable."""
    from PIL import ImageCms  # lcms bindings: loaded only for images that carry a profile
    alpha = None
    if transparent:
        image = image.convert("RGBA")
        alpha = image.getchannel("A")
    mode = image.mode if image.mode in ("RGB", "CMYK", "L") else "RGB"
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        converted = ImageCms.profileToProfile(image.convert(mode), profile, _srgb(), outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError):
        return None
    if converted is None:
        return None
    if alpha is not None:
        converted.putalpha(alpha)
    return converted


@functools.lru_cache(maxsize=1)
def _srgb() -> ImageCms.ImageCmsProfile:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@functools.lru_cache(maxsize=1)
def _lut_16_to_8() -> list[int]:
    """16-bit level to 8-bit level, rounded."""
    return [(value * 255 + 32767) // 65535 for value in range(65536)]
