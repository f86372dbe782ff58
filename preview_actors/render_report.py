"""What the worker takes from a renderer's ``report.json``: who rendered, the segment cache, warnings.

The render stage reads the report once, when the renderer has exited 0
(:func:`read_report`): the warnings go to the job's record at once, the rest
travels to finalize in the stage messages (:meth:`RenderReport.summary`).

A renderer may be any program (``PREVIEW_RENDERER``), so the report is its
word, not ours: a report that cannot be read, or a warning that is not
``{"code", "message", "step"?}``, is dropped with a log line and never fails
the job. What is kept is bounded (:data:`MAX_WARNINGS`,
:data:`MAX_MESSAGE_CHARS`), since it is stored on the job and served in every
status, and a warning's ``code`` is a metric label, so it must be a short
snake_case word.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import attrs

logger = logging.getLogger(__name__)

#: Warnings kept per job; the rest are dropped (and the count logged).
MAX_WARNINGS = 100
#: Characters of a warning's message kept; a longer one is cut to this length, ending in "…".
MAX_MESSAGE_CHARS = 1000
#: Characters of a warning's ``step`` at most (a step id is at most 128 by default).
MAX_STEP_CHARS = 256
#: A warning's code (``missing_glyphs``, ``truncated_asset``): the ``kind`` label of
#: ``preview_render_warnings_total``, hence a short snake_case word.
CODE_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}")


@attrs.frozen
class RenderWarning:
    """Something a successful render could not do as asked (a character no font covers, a clip cut short)."""

    #: What kind of problem: a snake_case word (:data:`CODE_PATTERN`).
    code: str
    #: For a person: what happened, where, and what to do about it.
    message: str
    #: The id of the step it concerns, when one does.
    step: str | None = None

    def to_json(self) -> dict[str, str]:
        """``{"code", "message", "step"?}``, as ``report.json`` and the status object have it."""
        document = {"code": self.code, "message": self.message}
        if self.step is not None:
            document["step"] = self.step
        return document

    @classmethod
    def from_json(cls, document: object) -> RenderWarning:
        """The warning ``document`` describes; its message cut to :data:`MAX_MESSAGE_CHARS`.

        Other keys are ignored (a later renderer may add some). Raises
        ``TypeError`` when ``document`` is not an object, ``ValueError``
        naming what is wrong when it lacks a ``code`` matching
        :data:`CODE_PATTERN` or a non-empty string ``message``, or has a
        ``step`` (not null) that is not a string of 1 to
        :data:`MAX_STEP_CHARS` characters.
        """
        if not isinstance(document, dict):
            raise TypeError(f"not an object but {type(document).__name__}")
        code = document.get("code")
        if not isinstance(code, str) or not CODE_PATTERN.fullmatch(code):
            raise ValueError(f"code {code!r} is not a snake_case word of at most 64 characters")
        message = document.get("message")
        if not isinstance(message, str) or not message:
            raise ValueError(f"message of {code!r} is not a non-empty string")
        step = document.get("step")
        if step is not None and (not isinstance(step, str) or not step or len(step) > MAX_STEP_CHARS):
            raise ValueError(f"step of {code!r} is not a string of 1 to {MAX_STEP_CHARS} characters")
        if len(message) > MAX_MESSAGE_CHARS:
            message = message[: MAX_MESSAGE_CHARS - 1] + "…"
        return cls(code, message, step)


def warnings_from(documents: object) -> tuple[RenderWarning, ...]:
    """The valid warnings of a report's ``warnings``, in order, at most :data:`MAX_WARNINGS`.

    Anything else is dropped with a log line: a ``warnings`` that is not a
    list, each malformed entry, and the entries beyond the cap (one line).
    """
    if not isinstance(documents, list):
        logger.warning("The renderer's report.json warnings is not a list but %s; dropped.", type(documents).__name__)
        return ()
    kept: list[RenderWarning] = []
    beyond = 0
    for index, document in enumerate(documents):
        try:
            warning = RenderWarning.from_json(document)
        except (TypeError, ValueError) as error:
            logger.warning("The renderer's report.json: dropped a malformed warning (warnings[%d]): %s.", index, error)
            continue
        if len(kept) < MAX_WARNINGS:
            kept.append(warning)
        else:
            beyond += 1
    if beyond:
        logger.warning("The renderer's report.json: %d more warnings than the %d kept; dropped.", beyond, MAX_WARNINGS)
    return tuple(kept)


@attrs.frozen
class RenderReport:
    """What the worker uses of a ``report.json``; None or zero where the report says nothing usable."""

    #: The renderer's name and version, for container.json.
    renderer_name: str | None = None
    renderer_version: str | None = None
    #: Segments the renderer reused from its cache (hits) and encoded (misses).
    segments_reused: int = 0
    segments_encoded: int = 0
    warnings: tuple[RenderWarning, ...] = ()

    @classmethod
    def from_json(cls, report: object) -> RenderReport:
        """The parts of a parsed ``report.json`` the worker uses (see :func:`warnings_from`)."""
        if not isinstance(report, dict):
            logger.warning("The renderer's report.json is not an object but %s; ignored.", type(report).__name__)
            return cls()
        segments = report.get("segments")
        if not isinstance(segments, list):
            segments = []
        reused = [segment.get("reused") for segment in segments if isinstance(segment, dict)]
        return cls(
            renderer_name=_string_or_none(report.get("renderer")),
            renderer_version=_string_or_none(report.get("version")),
            segments_reused=sum(1 for flag in reused if flag is True),
            segments_encoded=sum(1 for flag in reused if flag is False),
            warnings=warnings_from(report.get("warnings", [])),
        )

    def summary(self) -> dict[str, Any]:
        """What later stages need, for their messages (the warnings are in the job's record already)."""
        return {
            "renderer": {"name": self.renderer_name, "version": self.renderer_version},
            "segments": {"reused": self.segments_reused, "encoded": self.segments_encoded},
        }

    @classmethod
    def from_summary(cls, summary: dict[str, Any]) -> RenderReport:
        """The report :meth:`summary` describes (without warnings). Raises ``ValueError`` for another shape."""
        try:
            renderer, segments = summary["renderer"], summary["segments"]
            return cls(
                renderer_name=_string_or_none(renderer["name"]),
                renderer_version=_string_or_none(renderer["version"]),
                segments_reused=int(segments["reused"]),
                segments_encoded=int(segments["encoded"]),
            )
        except (KeyError, TypeError) as error:
            raise ValueError(f"not a report summary: {summary!r}") from error


def read_report(path: Path) -> RenderReport:
    """The report at ``path`` (a renderer's ``report.json``); an empty one, logged, when it cannot be read."""
    try:
        with open(path, encoding="utf-8") as file:
            document = json.load(file)
    except (OSError, ValueError) as error:
        logger.warning("The renderer's report.json cannot be read (%s); no warnings recorded.", error)
        return RenderReport()
    return RenderReport.from_json(document)


def _string_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
