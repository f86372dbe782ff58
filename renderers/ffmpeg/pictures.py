"""A clip's frames as they are displayed: decoder, display aspect, alpha and colour.

ffmpeg turns a clip upright as it decodes it (its display matrix); the rest
is one filter chain, the same in the clip's segment and in the poster, from
the decoded frames to frames that fit the media box:

* **decoder**: WebM VP8/VP9 with an alpha plane is decoded by libvpx, because
  ffmpeg's native decoders drop the alpha plane;
* **size**: scaled to fit at the display aspect, in square pixels (``dar``
  counts the pixel aspect ratio: a 720x576 clip with SAR 64:45 shows 16:9);
* **alpha**: kept (``yuva420p``) when the pixel format has it, so the overlay
  composites the clip over the step's background instead of over black;
* **colour**: converted to BT.709 SDR (:mod:`renderers.ffmpeg.colour`) after
  scaling down, so the conversion touches only the pixels that are shown.

A plain clip (BT.709 or untagged, no alpha) gets the single scale it always
had: no filter is added to its path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from renderers.ffmpeg import colour
from renderers.ffmpeg.encoder import SWS_FLAGS, VIDEO
from renderers.ffmpeg.probe import VideoStream

#: Decoders that keep WebM's alpha plane, by codec.
ALPHA_DECODERS = {"vp8": "libvpx", "vp9": "libvpx-vp9"}
#: What the picture chain hands on: 4:2:0 like the segment, with alpha when there is some.
PIX_FMT_ALPHA = "yuva420p"


@dataclass(frozen=True)
class ClipPicture:
    """How one clip's frames are decoded and turned into the picture shown."""

    #: ffmpeg decoder forced for the clip (``-c:v`` before its ``-i``), or None for ffmpeg's choice.
    decoder: str | None
    #: The decoded frames have transparency worth keeping.
    alpha: bool
    #: The decoded frames are RGB (no YUV matrix).
    rgb: bool
    colour: colour.ClipColour

    @classmethod
    def of(cls, video: VideoStream) -> ClipPicture:
        decoder = ALPHA_DECODERS.get(video.codec) if video.alpha_mode else None
        return cls(decoder, video.has_alpha, video.is_rgb, video.colour)

    @property
    def pix_fmt(self) -> str:
        """The pixel format of :meth:`filters`' frames."""
        return PIX_FMT_ALPHA if self.alpha else VIDEO.pix_fmt

    def input_args(self) -> list[str]:
        """Options that go before the clip's ``-i``."""
        return ["-c:v", self.decoder] if self.decoder else []

    def filters(self, width: int, height: int) -> str:
        """Filters from the decoded frames to frames fitting ``width`` x ``height`` (pixels).

        The result has square pixels, the aspect shown, even sides, and is
        BT.709 limited-range YUV 4:2:0 (:attr:`pix_fmt`), tagged by the caller.
        """
        to_bt709 = colour.to_bt709(self.colour, rgb=self.rgb, alpha=self.alpha)
        scale = f"scale=w='{fitted_width(width, height)}':h='{fitted_height(width, height)}'"
        if not to_bt709:  # swscale converts the matrix and range as it scales
            scale += f":out_color_matrix={VIDEO.colorspace}:out_range=tv"
        scale += f":flags={SWS_FLAGS}"
        return ",".join([scale, *to_bt709, "setsar=1", f"format={self.pix_fmt}"])

    def identity(self, width: int, height: int) -> dict[str, Any]:
        """Everything here that decides the pixels, for cache keys."""
        return {"decoder": self.decoder, "filters": self.filters(width, height)}


def fitted_width(width: int, height: int) -> str:
    """scale's expression for the width of frames of any display aspect (``dar``: their width
    over height shown, pixel aspect ratio included) fitted into ``width`` x ``height``: even, >= 2.

    An expression rather than ``force_original_aspect_ratio`` with ``reset_sar``, which only
    ffmpeg 7.1 and later have (``PREVIEW_FFMPEG`` may name an older one).
    """
    return f"max(2,2*floor(if(gt(dar,{width}/{height}),{width},{height}*dar)/2))"


def fitted_height(width: int, height: int) -> str:
    """The height that goes with :func:`fitted_width`."""
    return f"max(2,2*floor(if(gt(dar,{width}/{height}),{width}/dar,{height})/2))"
