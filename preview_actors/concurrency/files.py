"""Render slots as ``flock`` locks on files in DATA_DIR (one machine).

Locks taken through different open files conflict even inside one process,
and the kernel releases them when the holding process dies, however it dies.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from . import RenderSlots, Slot


class FileRenderSlots(RenderSlots):
    def __init__(self, directory: Path, limit: int) -> None:
        super().__init__(limit)
        self.directory = directory

    def try_acquire(self) -> Slot | None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for index in range(self.limit):
            descriptor = os.open(self.directory / f"render-slot-{index}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(descriptor)
                continue
            return _FileSlot(descriptor)
        return None


class _FileSlot(Slot):
    def __init__(self, descriptor: int) -> None:
        self._descriptor: int | None = descriptor

    def release(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)  # closing the file drops its lock
            self._descriptor = None
