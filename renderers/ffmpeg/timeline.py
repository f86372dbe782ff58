"""Where each step sits in the video, in whole frames.

Step boundaries are rounded once, from the running total of durations, so the
video lasts the sum of the step durations to within half a frame however many
steps there are (rounding each step alone would drift).
"""

from __future__ import annotations

from dataclasses import dataclass

from renderers.ffmpeg.spec import Spec, Step

#: Each segment fades in from, and out to, its background over this long.
FADE_MS = 200


@dataclass(frozen=True)
class Slot:
    step: Step
    start_frame: int
    frames: int
    #: Frames of fade-in at the start and of fade-out at the end (each).
    fade_frames: int

    def start_ms(self, fps: int) -> float:
        return self.start_frame * 1000 / fps


def frame_at(ms: int, fps: int) -> int:
    """The frame index nearest to ``ms`` (halves round up, unlike round())."""
    return (ms * fps + 500) // 1000


def fade_frames(frames: int, fps: int) -> int:
    """Fade length: FADE_MS, but at most a quarter of the segment each way."""
    return min(frame_at(FADE_MS, fps), frames // 4)


def layout_timeline(spec: Spec) -> list[Slot]:
    fps = spec.output.fps
    slots = []
    elapsed_ms = 0
    for step in spec.steps:
        start = frame_at(elapsed_ms, fps)
        elapsed_ms += step.duration_ms
        frames = frame_at(elapsed_ms, fps) - start
        # parse_spec refuses steps shorter than a frame, so frames >= 1 here.
        slots.append(Slot(step, start, frames, fade_frames(frames, fps)))
    return slots


def total_frames(slots: list[Slot]) -> int:
    return sum(slot.frames for slot in slots)
