"""Benchmark: the mock renderer's start-up, against the bare interpreter's.

    python -m bench.mock_startup [--runs 20] [--versus-path DIR]
    python bench/mock_startup.py [--runs 20]   (the same)

A mock render is mostly interpreter start-up, and the pipeline benchmark
spawns one per job, so this is the budget that keeps ``python -m bench
pipeline`` where it is. Each run renders a one-step spec with no assets to a
fresh directory through ``python -m renderers.mock`` (the built-in renderer
command) and times it to exit, interleaved with ``python -c pass`` (the floor
no renderer started by ``python`` can beat). Prints medians of wall and CPU
milliseconds, the ratio of the floor to the mock (1.0 would be a free mock)
and the milliseconds the mock adds to the floor; ``--versus-path DIR`` also
times the ``renderers`` package found in ``DIR`` (a copy of the previous
release) in the same run, for a before/after ratio. It ends with the
modules the mock imports beyond the floor, by ``-X importtime``, the most
expensive first.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python bench/mock_startup.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"

from . import common

#: The spec rendered: one step, no assets (so the mock's own work is as small as it gets).
TINY_SPEC = {
    "specVersion": 1,
    "jobId": "bench",
    "chapterId": "bench",
    "output": {"width": 64, "height": 36, "fps": 1},
    "steps": [{"id": "only", "durationMs": 1000, "title": None, "text": None, "asset": None, "background": "#000000"}],
    "assets": {},
    "audio": None,
    "cacheDir": None,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=int, default=20, help="runs per side (default 20)")
    parser.add_argument(
        "--versus-path",
        type=Path,
        default=None,
        help="a directory holding another renderers package (e.g. the previous release's) to time as well",
    )


def timed(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Run ``args`` in ``cwd`` to its exit; return (wall ms, CPU ms of the child). Raises if it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(args, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall * 1000, cpu * 1000


def imports_beyond_floor(args: list[str], env: dict[str, str], cwd: Path) -> list[tuple[str, int]]:
    """(module, cumulative µs) of the top-level imports ``args`` makes that ``python -c pass`` does not."""

    def top_level(command: list[str]) -> dict[str, int]:
        result = subprocess.run(
            [command[0], "-X", "importtime", *command[1:]], env=env, cwd=cwd, capture_output=True, text=True, check=False
        )
        found: dict[str, int] = {}
        for line in result.stderr.splitlines():
            if not line.startswith("import time:") or "cumulative" in line:
                continue
            _, cumulative, name = line[len("import time:") :].split("|")
            if not name.startswith("  "):  # indented: imported by another module, counted in its cumulative
                found[name.strip()] = int(cumulative)
        return found

    floor = top_level([sys.executable, "-c", "pass"])
    mine = top_level(args)
    return sorted(((name, us) for name, us in mine.items() if name not in floor), key=lambda item: -item[1])


def run(args: argparse.Namespace) -> int:
    if args.runs < 1:
        raise SystemExit("--runs must be at least 1")
    print(common.machine())
    env = common.base_env()
    sides: dict[str, tuple[list[str], dict[str, str]]] = {"python -c pass": ([sys.executable, "-c", "pass"], env)}
    # Run in a scratch directory: `-m` puts the working directory first on sys.path, before PYTHONPATH.
    with tempfile.TemporaryDirectory(prefix="bench-mock-") as scratch_dir:
        scratch = Path(scratch_dir)
        spec = scratch / "spec.json"
        spec.write_text(json.dumps(TINY_SPEC), encoding="utf-8")
        out = scratch / "out"
        mock = [sys.executable, "-m", "renderers.mock", str(spec), str(out)]
        sides["mock"] = (mock, env)
        if args.versus_path is not None:
            if not (args.versus_path / "renderers" / "mock").is_dir():
                raise SystemExit(f"--versus-path {args.versus_path}: no renderers/mock package there")
            other = dict(env, PYTHONPATH=os.pathsep.join([str(args.versus_path.resolve()), env["PYTHONPATH"]]))
            sides["mock (versus path)"] = (mock, other)
        walls: dict[str, list[float]] = {name: [] for name in sides}
        cpus: dict[str, list[float]] = {name: [] for name in sides}
        for command, side_env in sides.values():  # one warm-up each: page cache, .pyc files
            timed(command, side_env, scratch)
        for _, name in common.interleave(sides, args.runs):
            command, side_env = sides[name]
            wall, cpu = timed(command, side_env, scratch)
            walls[name].append(wall)
            cpus[name].append(cpu)
        wall_table = common.Table("Wall time to exit", "ms", higher_is_better=False)
        cpu_table = common.Table("CPU time (user + system)", "ms", higher_is_better=False)
        for table, values in ((wall_table, walls), (cpu_table, cpus)):
            for name in sides:
                versus = ["python -c pass"] if name != "python -c pass" else []
                if name == "mock" and "mock (versus path)" in sides:
                    versus.append("mock (versus path)")
                table.add(name, values[name], versus=versus)
            table.print()
        floor = statistics.median(walls["python -c pass"])
        print(f"\nmock start-up: {statistics.median(walls['mock']) - floor:.1f} ms above the floor (median wall)")
        if "mock (versus path)" in sides:
            print(f"versus path:   {statistics.median(walls['mock (versus path)']) - floor:.1f} ms above the floor")
        print("\nImports beyond the floor (-X importtime, cumulative µs, one run):")
        for name, us in imports_beyond_floor(mock, env, scratch)[:15]:
            print(f"  {us:>7}  {name}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mock_startup", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
