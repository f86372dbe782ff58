"""Content-addressed artifact storage under ``DATA_DIR/artifacts/sha256/ab/cd/<sha256>.<ext>``.

Files are hashed while streamed in fixed-size chunks (constant memory) and
appear in the store atomically: a hard link (or a temp file and rename) is
either there whole or not at all, and an artifact that exists already is kept,
so storing the same bytes twice leaves exactly one file.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

import attrs

#: Bytes read per chunk while hashing or copying.
CHUNK_BYTES = 1 << 20

CONTENT_TYPES = {
    ".mp4": "video/mp4",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".json": "application/json",
    ".log": "text/plain; charset=utf-8",
}


@attrs.frozen
class StoredArtifact:
    sha256: str
    size: int
    #: Relative to DATA_DIR.
    path: str
    content_type: str

    def to_json(self) -> dict[str, object]:
        return {"sha256": self.sha256, "size": self.size, "path": self.path, "contentType": self.content_type}


def content_type_of(path: str | Path) -> str:
    return CONTENT_TYPES.get(Path(path).suffix.lower(), "application/octet-stream")


def sha256_of_file(path: str | Path) -> tuple[str, int]:
    """Return (hex digest, size) of a file, streamed."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as file:
        buffer = bytearray(CHUNK_BYTES)
        view = memoryview(buffer)
        while count := file.readinto(buffer):
            digest.update(view[:count])
            size += count
    return digest.hexdigest(), size


class ArtifactStore:
    def __init__(self, data_dir: str | Path) -> None:
        self.data_dir = Path(data_dir)
        self.root = self.data_dir / "artifacts" / "sha256"

    def path_for(self, sha256: str, suffix: str) -> Path:
        return self.root / sha256[:2] / sha256[2:4] / f"{sha256}{suffix}"

    def add_file(self, source: str | Path) -> StoredArtifact:
        """Store ``source`` (left in place) by its content hash.

        Links the file into the store when DATA_DIR shares its filesystem, so
        large videos are read once and never copied; falls back to a copy.
        """
        source = Path(source)
        sha256, size = sha256_of_file(source)
        target = self.path_for(sha256, source.suffix.lower())
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source, target)
            except FileExistsError:
                pass  # another worker stored the same bytes first
            except OSError as error:
                if error.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                    raise
                with open(source, "rb") as file:
                    copied = self.add_stream(file, source.suffix.lower())
                return copied
        return StoredArtifact(sha256, size, self._relative(target), content_type_of(target))

    def add_stream(self, stream: BinaryIO, suffix: str) -> StoredArtifact:
        """Store a stream, hashing while copying into a temp file that is renamed into place."""
        temp_dir = self.data_dir / "artifacts" / "tmp"
        temp_dir.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(dir=temp_dir, suffix=suffix)
        try:
            with os.fdopen(handle, "wb") as temp:
                digest, size = _copy_hashing(stream, temp)
                temp.flush()
                os.fsync(temp.fileno())
            sha256 = digest.hexdigest()
            target = self.path_for(sha256, suffix)
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                os.unlink(temp_name)
            else:
                os.replace(temp_name, target)
        except BaseException:
            if os.path.exists(temp_name):
                os.unlink(temp_name)
            raise
        return StoredArtifact(sha256, size, self._relative(target), content_type_of(target))

    def open(self, relative_path: str) -> Path:
        """The absolute path of an artifact given its DATA_DIR-relative path (never escaping it)."""
        path = (self.data_dir / relative_path).resolve()
        if not path.is_relative_to(self.data_dir.resolve()):
            raise ValueError(f"artifact path {relative_path!r} escapes DATA_DIR")
        return path

    def _relative(self, path: Path) -> str:
        return path.relative_to(self.data_dir).as_posix()


def _copy_hashing(stream: BinaryIO, target: BinaryIO) -> tuple[hashlib._Hash, int]:
    """Copy ``stream`` to ``target``, hashing it: (sha256, size).

    Each chunk is written by a helper thread while the next is read and
    hashed; both release the GIL, so the copy takes about as long as the
    slower of the two rather than their sum (hashing and writing 1 GiB here
    take about as long as each other; see BENCHMARKS.md). At most two chunks
    are held at once.
    """
    digest = hashlib.sha256()
    size = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="artifact-writer") as writer:
        writing: Future[int] | None = None
        while chunk := stream.read(CHUNK_BYTES):
            digest.update(chunk)
            if writing is not None:
                writing.result()  # one chunk in flight; raises the write's error, if any
            writing = writer.submit(target.write, chunk)
            size += len(chunk)
        if writing is not None:
            writing.result()
    return digest, size

