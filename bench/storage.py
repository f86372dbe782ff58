"""Hashing and storage: storing a 1 GiB artifact against a bare ``hashlib.file_digest`` pass.

A 1 GiB file is made (and fsynced) in a temp dir on the filesystem of
``--dir`` (default: the system temp dir), then each run stores it in a fresh
DATA_DIR beside it, in a child process whose peak RSS
(``resource.getrusage``) is reported:

- ``file_digest`` — ``hashlib.file_digest(file, "sha256")``: the limit of reading and hashing;
- ``add_file`` — ``ArtifactStore.add_file``: hashed while streamed, then hard-linked into the store;
- ``add_stream`` — ``ArtifactStore.add_stream`` on the open file: hashed while copied into a temp
  file, fsynced, renamed into the store, so it also writes the 1 GiB to disk;
- ``copy+fsync`` — ``shutil.copyfileobj`` into a temp file and ``os.fsync``: what writing the
  bytes costs on this disk, the limit of any store that copies.

Targets: throughput ≥ 0.9 of ``file_digest``, peak RSS < 100 MB. The files are deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import common
from .common import Table

GIB = 1 << 30
KINDS = ("file_digest", "add_file", "add_stream", "copy+fsync")
#: Peak RSS target, bytes.
RSS_LIMIT = 100 * 1000 * 1000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size-mib", type=int, default=1024, help="artifact size (default 1024 = 1 GiB)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--dir", type=Path, default=Path(tempfile.gettempdir()), help="where the temp dir goes (its filesystem is measured)"
    )
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated subset of: {', '.join(KINDS)}")


def make_file(path: Path, size: int) -> None:
    """``size`` bytes of incompressible data, fsynced, so no write-back of it overlaps the runs."""
    block = os.urandom(16 << 20)
    with open(path, "wb") as file:
        written = 0
        while written < size:
            chunk = block[: size - written]
            file.write(chunk)
            written += len(chunk)
        file.flush()
        os.fsync(file.fileno())


def run_child(kind: str, source: Path, data_dir: Path) -> dict[str, float]:
    env = common.base_env(PREVIEW_BROKER_URL="stub://", DATA_DIR=str(data_dir))
    result = subprocess.run(
        [sys.executable, "-m", "bench.storage", kind, str(source), str(data_dir)],
        env=env, cwd=common.ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"{kind} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def run(args: argparse.Namespace) -> int:
    kinds = [kind.strip() for kind in args.kinds.split(",") if kind.strip()]
    size = args.size_mib << 20
    work = Path(tempfile.mkdtemp(prefix="bench-storage-", dir=args.dir))
    print(common.machine())
    try:
        source = work / "artifact.mp4"
        started = time.monotonic()
        make_file(source, size)
        print(f"{size / GIB:.2f} GiB artifact made in {time.monotonic() - started:.1f} s in {work} "
              f"(filesystem of {args.dir}); each run in a child process")  # fmt: skip
        rates: dict[str, list[float]] = {kind: [] for kind in kinds}
        rss: dict[str, list[float]] = {kind: [] for kind in kinds}
        for run_index, kind in common.interleave(kinds, args.runs):
            data_dir = work / f"data-{run_index}-{kind.replace('+', '-')}"
            # Every run starts alike: page cache just freed by a file of the same size (on this VM,
            # a write into pages freed a moment ago runs several times faster than into others),
            # and no write-back of an earlier run still going on.
            make_file(work / "scratch", size)
            (work / "scratch").unlink()
            os.sync()
            try:
                figures = run_child(kind, source, data_dir)
            finally:
                common.rmtree(data_dir)
                os.sync()
            rates[kind].append(size / (1 << 20) / figures["seconds"])
            rss[kind].append(figures["maxrss_bytes"] / 1e6)
            print(f"  run {run_index + 1} {kind:<12} {rates[kind][-1]:7.0f} MiB/s, peak RSS {rss[kind][-1]:.1f} MB", flush=True)
    finally:
        common.rmtree(work)
    table = Table(f"Storing a {size / GIB:.2f} GiB artifact: throughput (higher is better)", "MiB/s", fmt="{:.0f}")
    for kind in kinds:
        versus = [
            other for other in ("file_digest", "copy+fsync") if other in kinds and other != kind and not (kind == "file_digest")
        ]
        if kind != "add_stream":
            versus = versus[:1]
        table.add(kind, rates[kind], versus=versus)
    table.print()
    memory = Table("Peak RSS of the child process (lower is better)", "MB", higher_is_better=False)
    for kind in kinds:
        memory.add(kind, rss[kind], versus="file_digest" if kind != "file_digest" and "file_digest" in kinds else ())
    memory.print()
    if "file_digest" in kinds:
        for kind in ("add_file", "add_stream"):
            if kind in kinds:
                ratio = table.ratio(kind, "file_digest")
                common.verdict(f"{kind} / file_digest throughput", ratio, ">= 0.9", ratio >= 0.9)
    for kind in ("add_file", "add_stream"):
        if kind in kinds:
            peak = max(rss[kind])
            common.verdict(f"{kind} peak RSS, MB", peak, "< 100", peak < RSS_LIMIT / 1e6)
    return 0


def child(kind: str, source: Path, data_dir: Path) -> None:
    """Store (or hash) ``source`` once; print seconds and this process's peak RSS as JSON."""
    import hashlib
    import resource
    import shutil

    if kind in ("add_file", "add_stream"):
        from preview_actors.storage import ArtifactStore

        store = ArtifactStore(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if kind == "file_digest":
        with open(source, "rb") as file:
            hashlib.file_digest(file, "sha256").hexdigest()
    elif kind == "add_file":
        store.add_file(source)
    elif kind == "add_stream":
        with open(source, "rb") as file:
            store.add_stream(file, ".mp4")
    elif kind == "copy+fsync":
        with open(source, "rb") as file, open(data_dir / "copy.tmp", "wb") as target:
            shutil.copyfileobj(file, target, 1 << 20)
            target.flush()
            os.fsync(target.fileno())
    else:
        raise SystemExit(f"unknown kind {kind!r}")
    seconds = time.perf_counter() - started
    maxrss_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux
    print(json.dumps({"seconds": seconds, "maxrss_bytes": maxrss_bytes}))


if __name__ == "__main__":
    child(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))
