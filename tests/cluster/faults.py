"""The faults, injected one at a time while the load runs; each returns its window.

A window runs from the moment the fault starts to the moment the broken part is back
(restarted and listening, or resumed). Blocking process work runs in a thread so the
load keeps going on the event loop.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.cluster.processes import Cluster
from tests.cluster.workload import World

ALL_FAULTS = ("api_kill", "worker_kill", "redis_restart", "postgres_restart", "s3_pause")
S3_PAUSE_SECONDS = 10.0


@dataclass
class FaultWindow:
    name: str
    start: float
    end: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)


def _group_cpu_ticks(pgid: int) -> int:
    """User + system CPU ticks of every process in the group (a worker and its children)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # field 5 of stat: the process group
            total += int(fields[11]) + int(fields[12])
    return total


async def _job_status(client: httpx.AsyncClient, job_id: str, headers: dict[str, str]) -> str:
    try:
        response = await client.get(f"/api/jobs/{job_id}", headers=headers)
    except httpx.HTTPError:
        return "unknown"
    return str(response.json().get("status")) if response.status_code == 200 else "unknown"


async def api_kill(cluster: Cluster, world: World, client: httpx.AsyncClient) -> FaultWindow:
    window = FaultWindow("api_kill", world.rec.now(), detail={"process": "api1"})
    await asyncio.to_thread(cluster.procs["api1"].kill9)
    await asyncio.sleep(2.0)
    window.detail["restart_began"] = round(world.rec.now(), 2)
    await asyncio.to_thread(cluster.start_api, 1)
    window.end = world.rec.now()
    return window


async def worker_kill(cluster: Cluster, world: World, client: httpx.AsyncClient) -> FaultWindow:
    """Kill -9 the worker that is running a (large) GeoTIFF conversion, mid-job."""
    detail: dict[str, Any] = {}
    started = await world.geotiff_upload(
        client, size=int(os.environ.get("CLUSTER_BIG_TIFF", "2500"))
    )
    status = "not started"
    if started is not None:
        job_id, user = started
        detail["job_id"] = job_id
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = await _job_status(client, job_id, user.headers)
            if status != "queued" and status != "unknown":
                break
            await asyncio.sleep(0.2)
    detail["job_status_at_kill"] = status
    # The busy worker is the one burning CPU: compare both over half a second.
    pgids = {name: cluster.procs[name].pid for name in ("worker0", "worker1")}
    before = {name: _group_cpu_ticks(pgid) for name, pgid in pgids.items()}
    await asyncio.sleep(0.5)
    delta = {name: _group_cpu_ticks(pgid) - before[name] for name, pgid in pgids.items()}
    victim = max(delta, key=lambda name: delta[name])
    detail |= {"cpu_ticks_over_0.5s": delta, "process": victim}
    window = FaultWindow("worker_kill", world.rec.now(), detail=detail)
    await asyncio.to_thread(cluster.procs[victim].kill9)
    await asyncio.sleep(2.0)
    await asyncio.to_thread(cluster.procs[victim].start)
    window.end = world.rec.now()
    return window


async def redis_restart(cluster: Cluster, world: World, client: httpx.AsyncClient) -> FaultWindow:
    window = FaultWindow("redis_restart", world.rec.now(), detail={"how": "kill -9, 2 s, start"})
    await asyncio.to_thread(cluster.procs["redis"].kill9)
    await asyncio.sleep(2.0)
    await asyncio.to_thread(cluster.procs["redis"].start)
    window.end = world.rec.now()
    return window


async def postgres_restart(
    cluster: Cluster, world: World, client: httpx.AsyncClient
) -> FaultWindow:
    window = FaultWindow(
        "postgres_restart", world.rec.now(), detail={"how": "fast shutdown (SIGINT), start"}
    )
    await asyncio.to_thread(cluster.procs["postgres"].stop, signal.SIGINT, 60.0)
    await asyncio.sleep(1.0)
    await asyncio.to_thread(cluster.procs["postgres"].start)
    window.end = world.rec.now()
    return window


async def s3_pause(cluster: Cluster, world: World, client: httpx.AsyncClient) -> FaultWindow:
    window = FaultWindow(
        "s3_pause", world.rec.now(), detail={"how": f"SIGSTOP, {S3_PAUSE_SECONDS:.0f} s, SIGCONT"}
    )
    cluster.procs["s3"].send(signal.SIGSTOP)
    try:
        await asyncio.sleep(S3_PAUSE_SECONDS)
    finally:
        cluster.procs["s3"].send(signal.SIGCONT)
    window.end = world.rec.now()
    return window


FAULTS = {
    "api_kill": api_kill,
    "worker_kill": worker_kill,
    "redis_restart": redis_restart,
    "postgres_restart": postgres_restart,
    "s3_pause": s3_pause,
}
