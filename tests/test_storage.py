from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

from preview_actors.container import build_container, read_container, write_container
from preview_actors.storage import ArtifactStore, sha256_of_file


def test_add_file_stores_by_content_hash_and_keeps_one_copy(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "data")
    source = tmp_path / "video.mp4"
    source.write_bytes(b"x" * 3_000_000)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()

    first = store.add_file(source)
    second = store.add_file(source)

    assert first == second
    assert first.sha256 == digest and first.size == 3_000_000
    assert first.path == f"artifacts/sha256/{digest[:2]}/{digest[2:4]}/{digest}.mp4"
    assert first.content_type == "video/mp4"
    assert [p.name for p in (tmp_path / "data" / "artifacts").rglob("*") if p.is_file()] == [f"{digest}.mp4"]
    assert source.exists()  # left in place


def test_add_stream_hashes_while_copying_and_leaves_no_temp(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    data = os.urandom(2_500_000)

    stored = store.add_stream(io.BytesIO(data), ".jpg")

    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert (tmp_path / stored.path).read_bytes() == data
    assert list((tmp_path / "artifacts" / "tmp").iterdir()) == []


def test_failed_stream_leaves_nothing_behind(tmp_path: Path) -> None:
    class Broken(io.RawIOBase):
        def read(self, size: int = -1) -> bytes:
            raise OSError("disk on fire")

    store = ArtifactStore(tmp_path)
    with pytest.raises(OSError, match="disk on fire"):
        store.add_stream(Broken(), ".mp4")
    assert list((tmp_path / "artifacts" / "tmp").iterdir()) == []
    assert not (tmp_path / "artifacts" / "sha256").exists()


def test_open_refuses_paths_outside_data_dir(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "data")
    with pytest.raises(ValueError, match="escapes"):
        store.open("../secret")


def test_sha256_of_file_matches_hashlib(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    assert sha256_of_file(path) == (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_size)


def test_container_is_written_atomically_and_deterministically(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    video = tmp_path / "v.mp4"
    video.write_bytes(b"v")
    artifacts = [("video", store.add_file(video))]
    fields = dict(
        job_id="j", project_id="p", chapter_id="c", request_id="r", request_sha256="s", dry_run=False,
        renderer={"name": "mock", "version": "1"}, artifacts=artifacts,
    )
    path = write_container(tmp_path / "jobs" / "j", build_container(**fields))
    first = path.read_bytes()
    write_container(tmp_path / "jobs" / "j", build_container(**fields))

    assert path.read_bytes() == first
    assert read_container(tmp_path / "jobs" / "j")["artifacts"][0]["role"] == "video"
    assert sorted(p.name for p in path.parent.iterdir()) == ["container.json"]
    with pytest.raises(ValueError, match="unknown artifact role"):
        build_container(**{**fields, "artifacts": [("thumbnail", artifacts[0][1])]})
