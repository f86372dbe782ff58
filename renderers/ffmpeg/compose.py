"""One step as a picture: where title, text and media go, and the frames themselves.

A step is laid out inside a margin (so the frame's corners always show the
background): with an image or a clip, the title sits at the top, the text at
the bottom and the media fits, letterboxed, in the box between; without one,
title and text are centred. Pillow composes the whole still once; the
segment encoder repeats it. For clips, Pillow composes everything but the
clip and ffmpeg overlays the clip into ``media_box``.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from renderers.ffmpeg.spec import Output
from renderers.ffmpeg.text import TextBlock, draw_block, layout_block

#: Margin around everything, as a fraction of the frame's shorter side.
MARGIN = 0.06
#: Font sizes and gaps as fractions of the frame's 16:9 "unit" height.
TITLE_SIZE = 0.075
TEXT_SIZE = 0.045
GAP = 0.03
#: Text that does not fit shrinks to this share of its size, then ends in an ellipsis.
MIN_SHRINK = 0.6
#: Smallest font sizes at all, in pixels.
MIN_TITLE_PX = 8
MIN_TEXT_PX = 7
#: With media, the share of the inner height title and text may take at most.
TITLE_SHARE = 0.25
TEXT_SHARE = 0.3

Box = tuple[int, int, int, int]  # x0, y0, x1, y1
Colour = tuple[int, int, int]


@dataclass(frozen=True)
class Layout:
    width: int
    height: int
    title: TextBlock | None
    title_box: Box | None
    text: TextBlock | None
    text_box: Box | None
    media_box: Box | None


def plan_layout(output: Output, title: str | None, text: str | None, has_media: bool) -> Layout:
    width, height = output.width, output.height
    margin = max(1, round(min(width, height) * MARGIN))
    inner_width, inner_height = width - 2 * margin, height - 2 * margin
    unit = min(height, width * 9 / 16)
    gap = max(1, round(unit * GAP))
    title_px = max(MIN_TITLE_PX, round(unit * TITLE_SIZE))
    text_px = max(MIN_TEXT_PX, round(unit * TEXT_SIZE))
    title_room = int(inner_height * (TITLE_SHARE if has_media else 0.5))
    title_block = layout_block(
        title, bold=True, size=title_px, min_size=max(MIN_TITLE_PX, round(title_px * MIN_SHRINK)),
        max_width=inner_width, max_height=title_room,
    )
    title_height = title_block.height + gap if title_block else 0
    text_room = int(inner_height * TEXT_SHARE) if has_media else inner_height - title_height
    text_block = layout_block(
        text, bold=False, size=text_px, min_size=max(MIN_TEXT_PX, round(text_px * MIN_SHRINK)),
        max_width=inner_width, max_height=text_room,
    )
    text_height = text_block.height if text_block else 0
    left, right = margin, width - margin

    if has_media:
        title_box = (left, margin, right, margin + title_block.height) if title_block else None
        text_box = (left, height - margin - text_height, right, height - margin) if text_block else None
        media_top = margin + title_height
        media_bottom = height - margin - (text_height + gap if text_block else 0)
        media_box = (left, media_top, right, max(media_top + 1, media_bottom))
        return Layout(width, height, title_block, title_box, text_block, text_box, media_box)

    top = margin + max(0, (inner_height - title_height - text_height) // 2)
    title_box = (left, top, right, top + title_block.height) if title_block else None
    text_top = top + title_height
    text_box = (left, text_top, right, text_top + text_height) if text_block else None
    return Layout(width, height, title_block, title_box, text_block, text_box, None)


def text_colour(background: Colour) -> Colour:
    """White or near-black, whichever contrasts more with the background (WCAG)."""

    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in background)
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    on_white = 1.05 / (luminance + 0.05)
    on_black = (luminance + 0.05) / (0.0595 + 0.05)  # 0x11 as the dark colour
    return (255, 255, 255) if on_white >= on_black else (17, 17, 17)


def fit(size: tuple[int, int], box: Box) -> tuple[int, int, int, int]:
    """Where media of ``size`` goes in ``box``: scaled to fit, aspect kept, centred (x, y, w, h)."""
    box_width, box_height = box[2] - box[0], box[3] - box[1]
    scale = min(box_width / size[0], box_height / size[1])
    width = max(1, min(box_width, round(size[0] * scale)))
    height = max(1, min(box_height, round(size[1] * scale)))
    return box[0] + (box_width - width) // 2, box[1] + (box_height - height) // 2, width, height


def compose(layout: Layout, background: Colour, media: Image.Image | None = None) -> Image.Image:
    """The step's frame: background, media (if given) letterboxed, title and text."""
    frame = Image.new("RGB", (layout.width, layout.height), background)
    if media is not None and layout.media_box is not None:
        x, y, width, height = fit(media.size, layout.media_box)
        scaled = media.resize((width, height), Image.Resampling.BICUBIC, reducing_gap=3.0)
        frame.paste(scaled, (x, y), scaled if scaled.mode == "RGBA" else None)
    colour = text_colour(background)
    if layout.title is not None and layout.title_box is not None:
        draw_block(frame, layout.title, layout.title_box, colour)
    if layout.text is not None and layout.text_box is not None:
        draw_block(frame, layout.text, layout.text_box, colour)
    return frame
