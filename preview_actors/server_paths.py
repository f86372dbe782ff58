"""Keeping the server's folders out of what clients read.

A job's error message becomes its status, the answer of ``GET
/{jobId}/status``, the command line's output and a webhook's body. Messages
name assets by their id and ``uri`` (:func:`preview_actors.assets.asset_name`);
:class:`ServerPaths` is the last line of defence for the rest — a renderer's
last lines of stderr, an ``OSError`` naming the file it failed on: every
absolute path below ``DATA_DIR`` or ``PREVIEW_ASSET_ROOT`` is shown relative
to it (``/srv/previews/jobs/…/spec.json`` → ``jobs/…/spec.json``; below the
asset root that is the request's ``uri``), and either folder itself by its
variable's name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

import attrs

from .settings import Settings


@attrs.frozen
class ServerPaths:
    """Rewrites absolute paths below the given folders, longest folder first.

    Parameters:
      roots: (folder, name) pairs: an absolute folder and what stands for the
        folder itself (``DATA_DIR``). Both the folder as given and its resolved
        form (symlinks followed) are recognised.
    """

    roots: tuple[tuple[str, str], ...]
    _pattern: re.Pattern[str] | None = attrs.field(init=False, eq=False, repr=False)
    _names: dict[str, str] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        names: dict[str, str] = {}
        for folder, name in self.roots:
            for form in {os.path.normpath(folder), os.path.realpath(folder)}:
                if os.path.isabs(form) and form != os.sep:
                    names.setdefault(form, name)
        ordered = sorted(names, key=len, reverse=True)  # /srv/data/assets before /srv/data
        # A folder, then (optionally) the rest of the path below it; not a longer sibling (/srv/data2).
        folders = "|".join(re.escape(form) for form in ordered)
        # Not inside a longer path (/home/srv/data), then what lies below, up to a space, quote or bracket.
        below = r"(?:/([^\s'\"<>()\[\]{},;|]*))?"
        pattern = re.compile(rf"(?<![\w./-])({folders}){below}(?![\w.-])") if ordered else None
        object.__setattr__(self, "_pattern", pattern)
        object.__setattr__(self, "_names", names)

    @classmethod
    def of(cls, settings: Settings) -> ServerPaths:
        """The folders of ``settings`` a client must not see: DATA_DIR and PREVIEW_ASSET_ROOT."""
        return cls.named([(settings.data_dir, "DATA_DIR"), (settings.asset_root, "PREVIEW_ASSET_ROOT")])

    @classmethod
    def named(cls, roots: Iterable[tuple[Path | str, str]]) -> ServerPaths:
        return cls(tuple((os.fspath(folder), name) for folder, name in roots))

    def hide(self, text: str) -> str:
        """``text`` with every path below a folder shown relative to it, the folder itself by its name."""
        if self._pattern is None:
            return text
        return self._pattern.sub(self._relative, text)

    def _relative(self, match: re.Match[str]) -> str:
        below = match.group(2)
        return below if below else self._names[match.group(1)]
