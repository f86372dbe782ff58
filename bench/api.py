"""Submit API: POST of a typical request to one uvicorn worker, against a minimal endpoint.

Two servers, each one uvicorn worker on loopback with the same options
(``--no-access-log``; uvicorn's default loop and HTTP parser):

- ``preview`` — ``preview_api.create_app(settings)`` mounted at ``/api/preview``
  (:mod:`bench.api_preview`) on Redis DB 14: validation, job store, enqueue;
- ``limit`` — a Starlette endpoint that parses the same JSON and pushes it to
  Redis (:mod:`bench.api_limit`).

The body is ``examples/chapter.json`` (a new job each time: no ``jobId``).
Two measures per server and run, interleaved:

- throughput — ``wrk`` (Debian's; one thread, ``--connections`` keep-alive
  connections, ``--seconds`` long) when it is installed, else a minimal
  asyncio HTTP/1.1 client with as many connections: requests/s;
- latency — the asyncio client sending at a fixed ``--rate`` (open loop:
  latency counts from when a request was due, so a stall is not hidden) for
  ``--latency-seconds``: p50/p99.

Targets: preview ≥ 0.5 of the limit's throughput, p99 < 20 ms at 200 requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import common
from .common import ROOT, Child, Table

SERVERS = ("preview", "limit")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each throughput run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rate", type=float, default=200.0, help="requests/s of the latency runs")
    parser.add_argument("--latency-seconds", type=float, default=5.0)
    parser.add_argument(
        "--client", choices=("auto", "wrk", "python"), default="auto", help="throughput load generator (auto: wrk when installed)"
    )
    parser.add_argument("--body", type=Path, default=ROOT / "examples" / "chapter.json")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(name: str, port: int, data_dir: Path) -> Child:
    module = {"preview": "bench.api_preview:app", "limit": "bench.api_limit:app"}[name]
    env = common.base_env(
        BENCH_REDIS_URL=common.REDIS_URL,
        PREVIEW_BROKER_URL=common.REDIS_URL,
        DATA_DIR=str(data_dir),
        PREVIEW_QUEUE_MAX="100000000",
        PREVIEW_API_TOKEN="bench-token",
    )
    server = Child(
        [sys.executable, "-m", "uvicorn", module, "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--no-access-log", "--log-level", "info"],
        env=env,
    )  # fmt: skip
    server.wait_for("Uvicorn running on", timeout_s=60)
    return server


def wrk_throughput(url: str, body: bytes, seconds: float, connections: int, work: Path) -> tuple[float, int]:
    """Requests/s and the count of non-2xx answers, from wrk."""
    body_file = work / "body.json"
    body_file.write_bytes(body)
    script = work / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f'local file = io.open("{body_file}", "rb")\n'
        'wrk.body = file:read("*all")\n'
        "file:close()\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    result = subprocess.run(
        ["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds:g}s", "-s", str(script), url],
        capture_output=True, text=True, check=True, timeout=seconds + 60,
    )  # fmt: skip
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", result.stdout).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", result.stdout)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", result.stdout)
    failures = int(errors.group(1)) if errors else 0
    if socket_errors:
        failures += sum(int(count) for count in socket_errors.groups())
    return rate, failures


class _Connection:
    """One keep-alive HTTP/1.1 connection speaking just enough HTTP for this benchmark (far lighter than httpx)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> _Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def post(self, request: bytes) -> int:
        """Send ``request`` (a whole HTTP request); return the answer's status code once its body is read."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


def _request(port: int, body: bytes) -> bytes:
    return (
        f"POST /api/preview/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def _closed_loop(port: int, body: bytes, seconds: float, connections: int) -> tuple[float, int]:
    """Requests/s of ``connections`` connections each sending its next request when the last is answered."""
    request = _request(port, body)
    done = failures = 0
    pool = [await _Connection.open(port) for _ in range(connections)]
    deadline = time.monotonic() + seconds

    async def loop(connection: _Connection) -> None:
        nonlocal done, failures
        while time.monotonic() < deadline:
            status = await connection.post(request)
            done += 1
            failures += status >= 300

    started = time.monotonic()
    try:
        await asyncio.gather(*(loop(connection) for connection in pool))
    finally:
        for connection in pool:
            connection.close()
    return done / (time.monotonic() - started), failures


async def _fixed_rate(port: int, body: bytes, rate: float, seconds: float) -> tuple[list[float], int]:
    """Latencies (s) of requests sent at ``rate``/s, each counted from when it was due (open loop)."""
    request = _request(port, body)
    count = int(rate * seconds)
    latencies: list[float] = []
    failures = 0
    idle = [await _Connection.open(port) for _ in range(16)]
    everyone = list(idle)
    for connection in idle:  # warm the connections and the server
        await connection.post(request)

    async def one(due: float) -> None:
        nonlocal failures
        if idle:
            connection = idle.pop()
        else:  # all busy: the server is behind; open another rather than wait (that would hide the delay)
            connection = await _Connection.open(port)
            everyone.append(connection)
        status = await connection.post(request)
        latencies.append(time.monotonic() - due)
        failures += status >= 300
        idle.append(connection)

    started = time.monotonic()
    tasks = []
    try:
        for index in range(count):
            due = started + index / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(due)))
        await asyncio.gather(*tasks)
    finally:
        for connection in everyone:
            connection.close()
    return latencies, failures


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def run(args: argparse.Namespace) -> int:
    if not common.server_up("127.0.0.1", 6379):
        print("Redis is not running on 127.0.0.1:6379", file=sys.stderr)
        return 2
    try:
        import preview_api  # noqa: F401 - only whether it imports
    except ImportError as error:
        print(f"preview_api is not importable yet ({error}): the benchmark needs preview_api.create_app", file=sys.stderr)
        return 2
    client = args.client
    if client == "auto":
        client = "wrk" if shutil.which("wrk") else "python"
    body = args.body.read_bytes()
    json.loads(body)
    print(common.machine())
    print(f"POST /api/preview/ with {args.body.name} ({len(body)} bytes); throughput: {client}, {args.connections} connections, "
          f"{args.seconds:g} s; latency: asyncio client at {args.rate:g}/s for {args.latency_seconds:g} s")  # fmt: skip
    rates: dict[str, list[float]] = {name: [] for name in SERVERS}
    p50: dict[str, list[float]] = {name: [] for name in SERVERS}
    p99: dict[str, list[float]] = {name: [] for name in SERVERS}
    work = Path(tempfile.mkdtemp(prefix="bench-api-"))
    try:
        for run_index, name in common.interleave(SERVERS, args.runs):
            common.flush_redis()
            port = free_port()
            url = f"http://127.0.0.1:{port}/api/preview/"
            server = start_server(name, port, work / f"data-{run_index}-{name}")
            try:
                latencies, late_failures = asyncio.run(_fixed_rate(port, body, args.rate, args.latency_seconds))
                if client == "wrk":
                    rate, failures = wrk_throughput(url, body, args.seconds, args.connections, work)
                else:
                    rate, failures = asyncio.run(_closed_loop(port, body, args.seconds, args.connections))
            finally:
                server.stop()
            if failures or late_failures:
                raise RuntimeError(f"{name}: {failures + late_failures} requests failed:\n{server.output[-3000:]}")
            rates[name].append(rate)
            p50[name].append(percentile(latencies, 0.50) * 1000)
            p99[name].append(percentile(latencies, 0.99) * 1000)
            print(f"  run {run_index + 1} {name:<8} {rate:7.0f} requests/s; at {args.rate:g}/s p50 {p50[name][-1]:.1f} ms, "
                  f"p99 {p99[name][-1]:.1f} ms", flush=True)  # fmt: skip
    finally:
        common.rmtree(work)
        common.flush_redis()
    table = Table("Submit API: requests per second, one uvicorn worker (higher is better)", "req/s", fmt="{:.0f}")
    table.add("preview", rates["preview"], versus="limit")
    table.add("limit", rates["limit"])
    table.print()
    latency = Table(f"Latency at {args.rate:g} requests/s, ms (lower is better)", "ms", higher_is_better=False)
    latency.add("preview p50", p50["preview"])
    latency.add("preview p99", p99["preview"], versus="target p99")
    latency.add("limit p50", p50["limit"])
    latency.add("limit p99", p99["limit"], versus="target p99")
    latency.add("target p99", [20.0])
    latency.print()
    ratio = table.ratio("preview", "limit")
    common.verdict("preview / limit throughput", ratio, ">= 0.5", ratio >= 0.5)
    worst = statistics.median(p99["preview"])
    common.verdict(f"preview p99 at {args.rate:g}/s, ms", worst, "< 20", worst < 20)
    return 0
