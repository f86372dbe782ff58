"""The segment cache: encoded segments (and audio tracks) by content key.

A key is the sha256 of the canonical JSON of everything that decides the
bytes of the file (see :func:`key`); the render fills in what that is. Files
live at ``ROOT/ab/<key>.mp4``; they are written under a temporary name beside
their final place and renamed into it, so a reader never sees half a file and
two renders making the same segment at once just both rename identical files.
Temporaries left by a render that was killed are swept from a folder when a
later render writes into it. Nothing is ever evicted: that is the cache
owner's policy (files are touched when reused, so their mtime says when they
were last used).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

#: A temporary this old belongs to a render that died: sweep it.
STALE_TEMPORARY_S = 3600


def key(identity: dict[str, Any]) -> str:
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


class SegmentStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, content_key: str, suffix: str) -> Path:
        return self.root / content_key[:2] / f"{content_key}{suffix}"

    def has(self, content_key: str, suffix: str) -> bool:
        path = self.path(content_key, suffix)
        try:
            if path.stat().st_size == 0:
                return False
            os.utime(path)  # recently used: what an eviction policy would look at
        except OSError:
            return False
        return True

    def temporary(self, content_key: str, suffix: str) -> Path:
        """A fresh name to write ``content_key`` to before :meth:`commit`."""
        final = self.path(content_key, suffix)
        final.parent.mkdir(parents=True, exist_ok=True)
        self._sweep(final.parent)
        return final.with_name(f".{content_key}.{os.getpid()}.{os.urandom(4).hex()}.tmp{suffix}")

    def commit(self, temporary: Path, content_key: str, suffix: str) -> None:
        os.replace(temporary, self.path(content_key, suffix))

    @staticmethod
    def discard(temporary: Path) -> None:
        temporary.unlink(missing_ok=True)

    @staticmethod
    def _sweep(folder: Path) -> None:
        cutoff = time.time() - STALE_TEMPORARY_S
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return
        for entry in entries:
            if entry.name.startswith(".") and ".tmp" in entry.name:
                try:
                    if entry.stat().st_mtime < cutoff:
                        os.unlink(entry.path)
                except OSError:
                    pass  # another render swept it first
