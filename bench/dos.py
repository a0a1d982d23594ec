"""`/health` latency while large geometries are written and read back (issue 18, item 7).

One `worldbase serve` (embedded: SQLite, local storage). Two attackers loop for the
duration: one posts a 1e6-vertex LineString (8.9 MB, refused past
WORLDBASE_MAX_FEATURE_VERTICES), the other posts a LineString at the per-feature limit
(100,000 vertices, accepted) and reads the layer's features back. A prober asks for
`/health` every 20 ms. Prints p50/p99/max of `/health` in ms (goal: p99 < 100 ms) and what
the attackers got.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import threading
import time
from collections import Counter
from typing import Any

import httpx

from bench.common import free_port, python, server

SECONDS = int(os.environ.get("WORLDBASE_BENCH_SECONDS", "20"))
GOAL_MS = 100.0


def _line(vertices: int) -> bytes:
    # Whole degrees, compact: 1e6 positions make about the 8.9 MB body.
    coords = [[i % 90, (i // 90) % 90] for i in range(vertices)]
    feature = {"type": "Feature", "geometry": {"type": "LineString", "coordinates": coords}}
    return json.dumps(feature, separators=(",", ":")).encode()


def _attack(
    base: str, path: str, body: bytes, token: str, stop: threading.Event, seen: Counter[str]
) -> None:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    with httpx.Client(base_url=base, timeout=120) as http:
        while not stop.is_set():
            posted = http.post(path, content=body, headers=headers)
            seen[f"POST {len(body) // 1024} KiB -> {posted.status_code}"] += 1
            if not stop.is_set() and len(body) < 4_000_000:
                got = http.get(path, params={"limit": 10}, headers=headers)
                seen[f"GET features -> {got.status_code}"] += 1


def run(seconds: int = SECONDS) -> dict[str, Any]:
    data_dir = tempfile.mkdtemp(prefix="wb-bench-dos-")
    port = free_port()
    args = [python(), "-c", "from worldbase.cli import app; app()", "serve", "--port", str(port)]
    env = {
        "WORLDBASE_DATA_DIR": data_dir,
        "WORLDBASE_APPS": "samsyn",
        "LOG_LEVEL": "WARNING",
        "JWT_SECRET": "bench-" + "x" * 40,
        "REGISTER_RATE_LIMIT": "100/minute",
    }
    huge, at_limit = _line(1_000_000), _line(100_000)
    with server(args, port, env) as base, httpx.Client(base_url=base, timeout=30) as http:
        account = {"email": "bench@example.org", "password": "bench-password-1"}
        token = http.post("/api/auth/register", json=account).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        layer = http.post(
            "/api/layers", json={"name": "Big", "source_type": "vector"}, headers=auth
        ).json()
        path = f"/api/layers/{layer['id']}/features"
        baseline = [_timed(http, "/health") for _ in range(50)]
        stop = threading.Event()
        seen: Counter[str] = Counter()
        attackers = [
            threading.Thread(target=_attack, args=(base, path, body, token, stop, seen))
            for body in (huge, at_limit)
        ]
        for thread in attackers:
            thread.start()
        timings = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            timings.append(_timed(http, "/health"))
            time.sleep(0.02)
        stop.set()
        for thread in attackers:
            thread.join()
    p99 = _percentile(timings, 99)
    result = {
        "health_idle_p99_ms": _percentile(baseline, 99),
        "health_p50_ms": statistics.median(timings),
        "health_p99_ms": p99,
        "health_max_ms": max(timings),
        "probes": len(timings),
        "attack": dict(seen),
    }
    print(
        f"dos /health under large-geometry attack ({seconds} s, {len(timings)} probes): "
        f"p50 {result['health_p50_ms']:.1f} ms, p99 {p99:.1f} ms, max {result['health_max_ms']:.1f}"
        f" ms (idle p99 {result['health_idle_p99_ms']:.1f} ms) | goal p99 < {GOAL_MS:.0f} ms: "
        f"{'met' if p99 < GOAL_MS else 'NOT met'} | attack: {dict(seen)}"
    )
    return result


def _timed(http: httpx.Client, path: str) -> float:
    started = time.perf_counter()
    response = http.get(path)
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, response.text
    return elapsed


def _percentile(values: list[float], pct: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


if __name__ == "__main__":
    run()
