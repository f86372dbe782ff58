"""Generate the example chapter's assets, deterministically, into examples/assets/.

    python examples/make_assets.py

Makes three images (Pillow), a 2.5 s clip and a 32 s narration-like melody
(the ffmpeg of the imageio-ffmpeg wheel, or ``PREVIEW_FFMPEG``), and writes
``examples/chapter.json``, a job request as POSTed, whose asset ``uri`` s are
relative to ``examples/`` (the folder of chapter.json, the render command's default
asset root). Everything is small enough to
commit (well under 500 KB) and the same bytes come out on every run with the
same Pillow and ffmpeg.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
ASSETS = HERE / "assets"

#: Flags that keep ffmpeg's output the same from run to run.
BITEXACT = ["-map_metadata", "-1", "-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact"]


def ffmpeg() -> str:
    override = os.environ.get("PREVIEW_FFMPEG")
    if override:
        return override
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def cover(path: Path) -> None:
    """A 16:9 title card: a vertical gradient with a few shapes."""
    width, height = 960, 540
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(height):
        t = y / (height - 1)
        draw.line([(0, y), (width, y)], fill=(int(20 + 40 * t), int(60 + 90 * t), int(120 + 100 * t)))
    draw.ellipse((90, 90, 390, 390), fill=(250, 200, 60))
    draw.polygon([(480, 450), (700, 140), (920, 450)], fill=(240, 240, 240))
    draw.rectangle((0, 450, width, height), fill=(30, 90, 50))
    image.save(path, optimize=True)


def diagram(path: Path) -> None:
    """A portrait (3:4) diagram on a transparent background: letterboxing and alpha."""
    width, height = 450, 600
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    boxes = [(60, 40, 390, 160), (60, 240, 390, 360), (60, 440, 390, 560)]
    colours = [(220, 80, 60, 255), (60, 160, 220, 255), (90, 190, 90, 255)]
    for box, colour in zip(boxes, colours, strict=True):
        draw.rounded_rectangle(box, radius=18, fill=colour)
    for upper, lower in itertools.pairwise(boxes):
        x = (upper[0] + upper[2]) // 2
        draw.line([(x, upper[3]), (x, lower[1])], fill=(250, 250, 250, 255), width=8)
        draw.polygon([(x - 18, lower[1] - 24), (x + 18, lower[1] - 24), (x, lower[1])], fill=(250, 250, 250, 255))
    image.save(path, optimize=True)


def photo(path: Path) -> None:
    """A 4:3 "photo": smooth colour fields, saved as a JPEG."""
    width, height = 800, 600
    image = Image.new("RGB", (width, height))
    pixels = image.load()
    for y in range(height):
        for x in range(width):
            r = 128 + 100 * math.sin(x / 90) * math.cos(y / 130)
            g = 120 + 80 * math.sin((x + y) / 150)
            b = 150 + 90 * math.cos(x / 200 - y / 170)
            pixels[x, y] = (int(r), int(g), int(b))
    image.save(path, quality=80, optimize=True)


def clip(path: Path) -> None:
    """A 2.5 s 480x270 test pattern (x264, no audio)."""
    subprocess.run(
        [
            ffmpeg(), "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", "testsrc=size=480x270:rate=24:duration=2.5",
            "-c:v", "libx264", "-preset", "medium", "-crf", "30", "-pix_fmt", "yuv420p", "-threads", "1",
            *BITEXACT, "-movflags", "+faststart", str(path),
        ],
        check=True,
    )


def narration(path: Path) -> None:
    """A 32 s melody standing in for a narration (mono MP3)."""
    melody = "0.25*sin(2*PI*t*220*pow(2,(mod(floor(t*2),8)+2*mod(floor(t/4),3))/12))*(1-0.6*mod(t*2,1))"
    subprocess.run(
        [
            ffmpeg(), "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"aevalsrc='{melody}':s=22050:d=32",
            "-c:a", "libmp3lame", "-b:a", "32k", "-ac", "1",
            *BITEXACT, str(path),
        ],
        check=True,
    )


def chapter() -> dict[str, object]:
    steps = [
        ("intro", 3000, "Welcome to the tour", "A short preview of what this chapter covers.", "cover", "#102030"),
        ("goals", 3000, "What you will learn", "Three ideas, one diagram and a short demo clip.", None, "#1d3557"),
        (
            "flow",
            3500,
            "How it fits together",
            "Requests come in, steps are rendered, the video is joined.",
            "diagram",
            "#f1faee",
        ),
        ("photo", 3000, "A real-world example", "Images are scaled to fit and never stretched.", "photo", "#2b2d42"),
        ("demo", 3000, "See it move", "Clips play muted, and hold their last frame.", "clip", "#000000"),
        (
            "details",
            2500,
            "Les détails comptent",
            "Accents, ünïcödé and long words: Donaudampfschifffahrtsgesellschaft.",
            None,
            "#457b9d",
        ),
        ("rtl", 2500, "مرحبا — שלום", "Right-to-left text is shaped and wrapped too.", None, "#e63946"),
        ("recap", 3000, "Recap", "Steps are cached: change one, and only that one is rendered again.", "diagram", "#264653"),
        ("cover-again", 3000, None, "Thanks for watching.", "cover", "#0b132b"),
        ("outro", 3500, "Next chapter", "Continue when you are ready.", None, "#14213d"),
    ]
    return {
        "projectId": "example-project",
        "previewRequest": {
            "chapterId": "chapter-1",
            "output": "hd",
            "steps": [
                {
                    k: v
                    for k, v in {"id": i, "durationMs": d, "title": t, "text": x, "asset": a, "background": b}.items()
                    if v is not None
                }
                for i, d, t, x, a, b in steps
            ],
            "assets": [
                {"id": "cover", "type": "image", "uri": "assets/images/cover.png"},
                {"id": "diagram", "type": "image", "uri": "assets/images/diagram.png"},
                {"id": "photo", "type": "image", "uri": "assets/images/photo.jpg"},
                {"id": "clip", "type": "video", "uri": "assets/video/demo.mp4"},
                {"id": "narration", "type": "audio", "uri": "assets/audio/narration.mp3"},
            ],
            "audio": {"asset": "narration", "volume": 0.8, "fadeInMs": 500, "fadeOutMs": 1500},
        },
    }


def main() -> int:
    for folder in ("images", "video", "audio"):
        (ASSETS / folder).mkdir(parents=True, exist_ok=True)
    cover(ASSETS / "images" / "cover.png")
    diagram(ASSETS / "images" / "diagram.png")
    photo(ASSETS / "images" / "photo.jpg")
    clip(ASSETS / "video" / "demo.mp4")
    narration(ASSETS / "audio" / "narration.mp3")
    (HERE / "chapter.json").write_text(json.dumps(chapter(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    total = sum(path.stat().st_size for path in ASSETS.rglob("*") if path.is_file())
    print(f"wrote {ASSETS} ({total // 1024} KB) and {HERE / 'chapter.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
