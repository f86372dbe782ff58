"""The ffmpeg renderer: ``python -m renderers.ffmpeg SPEC.json OUT_DIR [--dry-run]``.

Each step becomes an H.264 segment (cached by content in the spec's
``cacheDir``), the segments are joined without re-encoding and the audio
track is mixed in. See :mod:`renderers.protocol` for the contract and
:mod:`renderers.ffmpeg.render` for how a render goes.

Modules, one idea each: ``spec`` (the checked spec), ``assets`` (resolving and
checking assets), ``probe`` (reading media headers with ffmpeg), ``timeline``
(frames per step), ``text`` (fonts and wrapping), ``compose`` (a step's frame),
``encoder`` (encoder settings), ``commands`` (ffmpeg command lines), ``cache``
(the segment store), ``plan`` (segments, cache keys, ``plan.json``), ``process``
(running ffmpeg children), ``render`` (the whole render, ``report.json``).
"""

from renderers.ffmpeg.plan import NAME, VERSION
from renderers.ffmpeg.render import main

__all__ = ["NAME", "VERSION", "main"]
