"""Pipeline overhead: jobs through render → hash → finalize with the mock renderer on Redis.

Three sides, each with the same worker processes × threads and the same
renderer command (``Settings(renderer="mock").renderer_command``) on the
same spec (the example chapter's, assets resolved):

- ``preview`` — ``dramatiq preview_actors``: the project, jobs sent with
  ``submit_preview`` (validation, job store, render slots, spec, logs,
  content-addressed artifacts, container.json, status updates);
- ``bare dramatiq`` (the limit) — three actors, the first spawns the
  renderer and does nothing else (:mod:`bench.pipeline_bare`);
- ``celery chain`` (the peer) — three tasks, the first spawns the renderer,
  Celery's thread pool, the same Redis (:mod:`bench.pipeline_celery`).

Per run: the jobs are queued first (the submit rate is printed apart), then
the workers start (2 processes × 8 threads by default; Celery: 2 workers with
``-P threads -c 8``; renderers in sessions of their own on every side); the
clock runs from the first render starting to the last pipeline finishing.
Sides run interleaved, ``--runs`` times each. Besides the rate, each run
prints the CPU spent per pipeline by the worker processes themselves, by
their renderers, by Redis and by this process — on a 2-core machine the
rate is about 2 cores / that total. ``--profile`` records the dramatiq
workers with py-spy (collapsed stacks; GIL-holding samples) into
``--profile-dir``. Targets: preview ≥ 0.8 of the limit and ahead of Celery.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from . import common
from .common import ROOT, Child, Table

_last_worker_output = ""
SIDES = ("preview", "bare dramatiq", "celery chain")
DONE_KEY = "bench:done"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--jobs", type=int, default=600, help="pipelines per run (default 600, not 2,000, to fit 3 runs of 3 sides in 5 minutes)"
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per side (default 3)")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--sides", default=",".join(SIDES), help=f"comma-separated subset of: {', '.join(SIDES)}")
    parser.add_argument("--chapter", type=Path, default=ROOT / "examples" / "chapter.json")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="record the dramatiq workers with py-spy (one run; collapsed stacks in --profile-dir)",
    )
    parser.add_argument("--profile-dir", type=Path, default=Path(tempfile.gettempdir()) / "bench-profiles")


def run(args: argparse.Namespace) -> int:
    if not common.server_up("127.0.0.1", 6379):
        print("Redis is not running on 127.0.0.1:6379", file=sys.stderr)
        return 2
    sides = [side.strip() for side in args.sides.split(",") if side.strip()]
    unknown = set(sides) - set(SIDES)
    if unknown:
        print(f"unknown sides: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    try:
        return _run(args, sides, work)
    finally:
        common.rmtree(work)
        common.flush_redis()


def _run(args: argparse.Namespace, sides: list[str], work: Path) -> int:
    os.environ["PREVIEW_BROKER_URL"] = "stub://"  # importing preview_actors: harmless until set up below
    from preview_actors.settings import Settings

    from .chapter_spec import build_spec, write_spec

    asset_root = args.chapter.parent
    command = Settings(broker_url="stub://", store_url="memory://", data_dir=work, renderer="mock").renderer_command
    spec = build_spec(args.chapter, asset_root, None)
    spec_file = write_spec(spec, work / "spec.json")
    render_command = [*command, str(spec_file)]
    print(common.machine())
    print(
        f"{args.jobs} pipelines per run, {args.processes} processes x {args.threads} threads per side, "
        f"renderer: {' '.join(command)} ({args.chapter.name}: {len(spec['steps'])} steps, {len(spec['assets'])} assets)"
    )
    rates: dict[str, list[float]] = {side: [] for side in sides}
    submit_rates: dict[str, list[float]] = {side: [] for side in sides}
    cpu_ms: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
    runs = 1 if args.profile else args.runs
    for run_index, side in common.interleave(sides, runs):
        run_dir = work / f"run-{run_index}-{side.split()[0]}"
        run_dir.mkdir()
        common.flush_redis()
        try:
            elapsed_s, submit_s, cpu = RUNNERS[side](args, run_dir, render_command, asset_root)
        finally:
            common.flush_redis()
            common.rmtree(run_dir)
        rates[side].append(args.jobs / elapsed_s)
        submit_rates[side].append(args.jobs / submit_s)
        cpu_ms[side].append({name: seconds * 1000 / args.jobs for name, seconds in cpu.items()})
        print(
            f"  run {run_index + 1} {side:<14} {args.jobs / elapsed_s:7.1f} pipelines/s ({elapsed_s:.2f} s); CPU ms per job: "
            + ", ".join(f"{name} {seconds * 1000 / args.jobs:.1f}" for name, seconds in cpu.items()),
            flush=True,
        )

    table = Table("Pipeline overhead: pipelines per second (higher is better)", "jobs/s")
    reference = "bare dramatiq" if "bare dramatiq" in sides else None
    for side in sides:
        versus = [other for other in ("bare dramatiq", "celery chain") if other in sides and other != side]
        if side == "celery chain":
            versus = versus[:1]
        note = f"queued at {statistics.median(submit_rates[side]):.0f}/s beforehand (not timed)"
        table.add(side, rates[side], versus=versus, note=note)
    table.print()
    print("\nCPU per pipeline, ms (medians; 'workers' is the worker processes themselves, 'renderers' their children):")
    for side in sides:
        names = cpu_ms[side][0].keys()
        medians = (f"{name} {statistics.median(run[name] for run in cpu_ms[side]):.1f}" for name in names)
        print(f"  {side:<14} " + ", ".join(medians))
    if "preview" in sides and reference:
        versus_bare = table.ratio("preview", reference)
        common.verdict("preview / bare dramatiq", versus_bare, ">= 0.8", versus_bare >= 0.8)
    if "preview" in sides and "celery chain" in sides:
        versus_celery = table.ratio("preview", "celery chain")
        common.verdict("preview / celery chain", versus_celery, "> 1.0", versus_celery > 1.0)
    return 0


def _time_workers(workers: list[Child], first_text: str, done: Callable[[], bool], jobs: int) -> tuple[float, dict[str, float]]:
    """Seconds from the first render starting (a line with ``first_text``) to ``done()``,
    and CPU seconds spent meanwhile by whom."""
    try:
        deadline = time.monotonic() + 120
        while not any(first_text in line for worker in workers for _, line in list(worker.lines)):
            _check_alive(workers)
            if time.monotonic() > deadline:
                raise TimeoutError("no render started:\n" + "\n".join(w.output[-3000:] for w in workers))
            time.sleep(0.002)
        cpu_before = _cpu(workers)
        started = min(at for worker in workers for at, line in list(worker.lines) if first_text in line)
        deadline = started + max(120.0, jobs / 5)
        while not done():
            _check_alive(workers)
            if time.monotonic() > deadline:
                raise TimeoutError("the pipelines did not finish in time:\n" + "\n".join(w.output[-3000:] for w in workers))
            time.sleep(0.01)
        elapsed_s = time.monotonic() - started
        cpu_after = _cpu(workers)
        global _last_worker_output
        _last_worker_output = "\n".join(worker.output for worker in workers)
        return elapsed_s, {name: cpu_after[name] - cpu_before[name] for name in cpu_after}
    finally:
        for worker in workers:
            profiler = getattr(worker, "profiler", None)
            if profiler is not None:  # py-spy writes its file on SIGINT
                profiler.send_signal(signal.SIGINT)
                profiler.wait(timeout=60)
            worker.stop()


def _check_alive(workers: list[Child]) -> None:
    for worker in workers:
        if worker.process.poll() is not None:
            raise RuntimeError(f"a worker exited with {worker.process.returncode}:\n{worker.output[-3000:]}")


def _cpu(workers: list[Child]) -> dict[str, float]:
    own = renderers = 0.0
    for worker in workers:
        a, b = common.group_cpu(worker.process.pid)
        own, renderers = own + a, renderers + b
    return {"workers": own, "renderers": renderers, "redis": common.redis_server_cpu(), "bench": common.own_cpu()}


def _dramatiq_worker(module: str, args: argparse.Namespace, env: dict[str, str]) -> Child:
    command = [sys.executable, "-m", "dramatiq", module, "--processes", str(args.processes), "--threads", str(args.threads)]
    worker = Child(command, env=env)
    if args.profile:
        args.profile_dir.mkdir(parents=True, exist_ok=True)
        target = args.profile_dir / f"{module.replace('.', '_')}.txt"
        spy = [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(worker.process.pid), "--subprocesses",
               "--gil", "-r", "100", "-f", "raw", "-o", str(target)]
        worker.profiler = subprocess.Popen(spy, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # type: ignore[attr-defined]
        print(f"  profiling into {target} (collapsed stacks)")
    return worker


def run_preview(
    args: argparse.Namespace, run_dir: Path, render_command: list[str], asset_root: Path
) -> tuple[float, float, dict[str, float]]:
    import preview_actors
    from preview_actors.settings import Settings

    data_dir = run_dir / "data"
    env = common.base_env(
        PREVIEW_BROKER_URL=common.REDIS_URL,
        DATA_DIR=str(data_dir),
        PREVIEW_RENDERER="mock",
        PREVIEW_ASSET_ROOT=str(asset_root),
        PREVIEW_MAX_CONCURRENCY=str(args.processes * args.threads),
        PREVIEW_QUEUE_MAX=str(max(1000, args.jobs * 2)),
    )
    settings = Settings.from_env(env)
    runtime = preview_actors.setup(settings)
    request = json.loads(args.chapter.read_text(encoding="utf-8"))
    started = time.monotonic()
    for _ in range(args.jobs):
        preview_actors.submit_preview(request, runtime=runtime)
    submit_s = time.monotonic() - started
    store = runtime.store
    elapsed_s, cpu = _time_workers(
        [_dramatiq_worker("preview_actors", args, env)], "Rendering attempt", lambda: store.count_unfinished() == 0, args.jobs
    )
    _check_preview(runtime, args.jobs)
    if args.profile:
        (args.profile_dir / "preview_worker_output.txt").write_text(_last_worker_output)
    preview_actors.setup(Settings(broker_url="stub://", store_url="memory://", data_dir=data_dir))  # close Redis
    return elapsed_s, submit_s, cpu


def _check_preview(runtime, jobs: int) -> None:  # type: ignore[no-untyped-def]
    client = runtime.store.client
    keys = [key for key in client.scan_iter("preview:job:*", count=1000)]
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.hget(key, "state")
    states = pipe.execute()
    succeeded = sum(1 for state in states if state == "succeeded")
    if len(keys) != jobs or succeeded != jobs:
        raise RuntimeError(f"expected {jobs} succeeded jobs, found {succeeded} of {len(keys)}")


def _counter_done(jobs: int) -> Callable[[], bool]:
    client = common.redis_client()
    return lambda: int(client.get(DONE_KEY) or 0) >= jobs


def run_bare(
    args: argparse.Namespace, run_dir: Path, render_command: list[str], asset_root: Path
) -> tuple[float, float, dict[str, float]]:
    env = common.base_env(
        BENCH_REDIS_URL=common.REDIS_URL, BENCH_RENDER_COMMAND=json.dumps(render_command), BENCH_OUT_DIR=str(run_dir)
    )
    os.environ["BENCH_REDIS_URL"] = common.REDIS_URL
    from . import pipeline_bare

    started = time.monotonic()
    pipeline_bare.enqueue(args.jobs)
    submit_s = time.monotonic() - started
    workers = [_dramatiq_worker("bench.pipeline_bare", args, env)]
    elapsed_s, cpu = _time_workers(workers, pipeline_bare.FIRST_LINE, _counter_done(args.jobs), args.jobs)
    return elapsed_s, submit_s, cpu


def run_celery(
    args: argparse.Namespace, run_dir: Path, render_command: list[str], asset_root: Path
) -> tuple[float, float, dict[str, float]]:
    env = common.base_env(
        BENCH_REDIS_URL=common.REDIS_URL, BENCH_RENDER_COMMAND=json.dumps(render_command), BENCH_OUT_DIR=str(run_dir)
    )
    os.environ["BENCH_REDIS_URL"] = common.REDIS_URL
    from . import pipeline_celery

    started = time.monotonic()
    pipeline_celery.enqueue(args.jobs)
    submit_s = time.monotonic() - started
    celery = str(Path(sys.executable).with_name("celery"))
    workers = [
        Child(
            [celery, "-A", "bench.pipeline_celery", "worker", "-P", "threads", "-c", str(args.threads), "-n", f"bench{index}@%h",
             "-l", "warning", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            env=env,
        )
        for index in range(args.processes)
    ]
    elapsed_s, cpu = _time_workers(workers, pipeline_celery.FIRST_LINE, _counter_done(args.jobs), args.jobs)
    return elapsed_s, submit_s, cpu


RUNNERS = {"preview": run_preview, "bare dramatiq": run_bare, "celery chain": run_celery}
