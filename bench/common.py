"""Shared bench helpers: start servers on loopback, load them with wrk (or an httpx fallback)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(args: Sequence[str], port: int, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run a server process on 127.0.0.1:port until the block ends."""
    proc = subprocess.Popen(
        list(args),
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(base + "/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise RuntimeError(f"server on {port} did not start: {args}")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@dataclass
class Load:
    requests_per_second: float
    p50_ms: float


_WRK_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_WRK_P50 = re.compile(r"50%\s+([\d.]+)(us|ms|s)")


def load(
    url: str, *, seconds: int = 5, connections: int = 1, headers: dict[str, str] | None = None
) -> Load:
    """Closed-loop load on one URL; wrk when installed (Debian package), else httpx."""
    wrk = shutil.which("wrk")
    if wrk:
        cmd = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
        for key, value in (headers or {}).items():
            cmd += ["-H", f"{key}: {value}"]
        out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
        rps = float(_WRK_RPS.search(out).group(1))  # type: ignore[union-attr]
        value, unit = _WRK_P50.search(out).groups()  # type: ignore[union-attr]
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
        return Load(rps, float(value) * scale)
    return asyncio.run(_httpx_load(url, seconds, connections, headers or {}))


async def _httpx_load(url: str, seconds: int, connections: int, headers: dict[str, str]) -> Load:
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(headers=headers) as client:

        async def worker() -> None:
            while time.monotonic() < deadline:
                start = time.perf_counter()
                (await client.get(url)).raise_for_status()
                latencies.append(time.perf_counter() - start)

        await asyncio.gather(*(worker() for _ in range(connections)))
    return Load(len(latencies) / seconds, statistics.median(latencies) * 1000)


def python() -> str:
    return sys.executable


BENCH_JWT_SECRET = "bench-" + "x" * 40


def samsyn_server(stack: ExitStack, data_dir: Path, *, allowlist: str) -> str:
    """The samsyn app alone on one uvicorn worker (embedded settings, `allowlist` the only
    readable outside source) until `stack` closes; its base URL."""
    port = free_port()
    env = {
        "WORLDBASE_DATA_DIR": str(data_dir),
        "JWT_SECRET": BENCH_JWT_SECRET,
        "LOG_LEVEL": "WARNING",
        "WORLDBASE_APPS": "samsyn",
        "WORLDBASE_SOURCE_ALLOWLIST": allowlist,
        "WORLDBASE_PERIODIC_JOBS": "false",
    }
    args = [python(), "-m", "uvicorn", "worldbase.app:create_app", "--factory"]
    args += ["--port", str(port), "--log-level", "warning"]
    return stack.enter_context(server(args, port, env))
