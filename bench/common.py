"""What every benchmark shares: tables of medians and ratios, the machine, Redis, child processes."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
#: Redis database the benchmarks use; flushed before and after each one.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
AMQP_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


def machine() -> str:
    """One line naming the machine: cores, CPU model, Python."""
    model = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    return (
        f"{len(os.sched_getaffinity(0))} cpus ({model}), Python {platform.python_version()} "
        f"({platform.python_implementation()}), {platform.system()} {platform.release()}"
    )


class Table:
    """Rows of "name: values over runs" printed as median, min–max and the ratio to a reference row.

    ``higher_is_better`` says which way the ratio points: for rates the ratio is
    row / reference, for times reference / row, so a ratio above 1 always means
    "better than the reference".
    """

    def __init__(self, title: str, unit: str, *, higher_is_better: bool = True, fmt: str = "{:.1f}") -> None:
        self.title = title
        self.unit = unit
        self.higher_is_better = higher_is_better
        self.fmt = fmt
        self.rows: list[tuple[str, list[float], tuple[str, ...], str]] = []

    def add(self, name: str, values: Sequence[float], *, versus: str | Sequence[str] = (), note: str = "") -> None:
        """A row; its ratio is given against each row named in ``versus``."""
        self.rows.append((name, list(values), (versus,) if isinstance(versus, str) else tuple(versus), note))

    def median(self, name: str) -> float:
        for row, values, _, _ in self.rows:
            if row == name:
                return statistics.median(values)
        raise KeyError(name)

    def ratio(self, name: str, versus: str) -> float:
        mine, theirs = self.median(name), self.median(versus)
        if self.higher_is_better:
            return mine / theirs if theirs else float("nan")
        return theirs / mine if mine else float("nan")

    def print(self, out: IO[str] | None = None) -> None:
        out = out or sys.stdout
        f = self.fmt.format
        cells = [("", f"median {self.unit}", "min – max", "runs", "ratio", "")]
        for name, values, versus, note in self.rows:
            ratio = ", ".join(f"{self.ratio(name, other):.2f} vs {other}" for other in versus)
            spread = f"{f(min(values))} – {f(max(values))}"
            cells.append((name, f(statistics.median(values)), spread, str(len(values)), ratio, note))
        widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
        print(f"\n{self.title}", file=out)
        for index, row in enumerate(cells):
            line = "  ".join(
                cell.ljust(width) if column in (0, 4, 5) else cell.rjust(width)
                for column, (cell, width) in enumerate(zip(row, widths, strict=True))
            )
            print("  " + line.rstrip(), file=out)
            if index == 0:
                print("  " + "  ".join("-" * width for width in widths if width), file=out)
        out.flush()


def verdict(name: str, value: float, target: str, ok: bool) -> str:
    line = f"{name}: {value:.2f} (target {target}) — {'met' if ok else 'NOT met'}"
    print(line)
    return line


# -- Redis -------------------------------------------------------------------------------------


def redis_client(url: str = REDIS_URL):  # type: ignore[no-untyped-def]
    import redis

    return redis.Redis.from_url(url)


def flush_redis(url: str = REDIS_URL) -> None:
    client = redis_client(url)
    try:
        client.flushdb()
    finally:
        client.close()


@contextlib.contextmanager
def clean_redis(url: str = REDIS_URL) -> Iterator[None]:
    """Flush the benchmark's Redis database before and after the block."""
    flush_redis(url)
    try:
        yield
    finally:
        flush_redis(url)


def server_up(host: str, port: int) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


# -- Child processes ---------------------------------------------------------------------------


class Child:
    """A child process in its own session, its output kept (and watched for a line)."""

    def __init__(self, args: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path = ROOT) -> None:
        self.args = list(args)
        self.lines: list[tuple[float, str]] = []
        self._seen = threading.Condition()
        self.process = subprocess.Popen(
            self.args,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            with self._seen:
                self.lines.append((time.monotonic(), raw.decode("utf-8", "replace").rstrip()))
                self._seen.notify_all()

    @property
    def output(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def wait_for(self, text: str, *, count: int = 1, timeout_s: float = 60.0) -> list[float]:
        """Wait until ``count`` lines contain ``text``; return when each was seen (monotonic)."""
        deadline = time.monotonic() + timeout_s
        with self._seen:
            while True:
                seen = [at for at, line in self.lines if text in line]
                if len(seen) >= count:
                    return seen[:count]
                if self.process.poll() is not None and not self._reader.is_alive():
                    raise RuntimeError(f"{self.args[:4]} exited with {self.process.returncode}:\n{self.output[-4000:]}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no {count} x {text!r} from {self.args[:4]} in {timeout_s}s:\n{self.output[-4000:]}")
                self._seen.wait(min(remaining, 0.5))

    def signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM the process group, SIGKILL it if it lingers."""
        if self.process.poll() is None:
            self.signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                pass
        self.signal_group(signal.SIGKILL)
        self.process.wait()
        self._reader.join(timeout=5)


def base_env(**extra: str) -> dict[str, str]:
    """This environment without PREVIEW_* variables, the repository first on the path."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("PREVIEW_", "DATA_DIR"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def wait_until(predicate: Callable[[], object], *, timeout_s: float, interval_s: float = 0.02, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(interval_s)


def rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def interleave(names: Iterable[str], runs: int) -> list[tuple[int, str]]:
    """(run, name) pairs alternating the sides, so drifting machine load hits all alike."""
    names = list(names)
    return [(run, name) for run in range(runs) for name in (names if run % 2 == 0 else names[::-1])]


# -- CPU accounting ----------------------------------------------------------------------------

_TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def group_cpu(group: int) -> tuple[float, float]:
    """CPU seconds (user + system) of process group ``group``: (its processes, their reaped children).

    A worker's renderers are reaped children, so the second figure is the
    renderers' CPU and the first the workers' own.
    """
    own = children = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        # fields[0] is field 3 (state): pgrp is field 5, utime..cstime fields 14..17.
        if int(fields[2]) != group:
            continue
        own += (int(fields[11]) + int(fields[12])) * _TICK_S
        children += (int(fields[13]) + int(fields[14])) * _TICK_S
    return own, children


def redis_server_cpu(url: str = REDIS_URL) -> float:
    """CPU seconds the Redis server has used (it runs on this machine)."""
    client = redis_client(url)
    try:
        info = client.info("cpu")
    finally:
        client.close()
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def own_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

