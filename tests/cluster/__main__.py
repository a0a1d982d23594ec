"""`python -m tests.cluster` (`make cluster-test`): the cluster fault test.

Settings (environment):
  CLUSTER_LOAD_SECONDS       mixed load with faults (default 210)
  CLUSTER_FAULTS             comma list of api_kill, worker_kill, redis_restart,
                             postgres_restart, s3_pause (default all; "none" for none)
  CLUSTER_THROUGHPUT_SECONDS each read-mix phase (default 8), one then two API processes,
  CLUSTER_THROUGHPUT_ROUNDS  alternated this many times (default 2; medians reported)
  CLUSTER_USERS              load users (signed-in accounts with a map each; default 4)
  CLUSTER_CONCURRENCY        concurrent virtual users of the mixed load (default 8)
  CLUSTER_RECOVERY_BOUND     seconds from a fault's end to each kind's first success (20)
  CLUSTER_JOB_END_BOUND      seconds the jobs get to end after the load (default 120)
  CLUSTER_BUDGET_SECONDS     the whole run's time budget (default 600)
  CLUSTER_REPORT             JSON report path (default bench/results/cluster-latest.json)
  CLUSTER_JOB_STALE_SECONDS  passed as WORLDBASE_JOB_STALE_SECONDS; a killed worker's job
                             must end within it + 30 s of the kill (default 10)
  CLUSTER_LOGIN_RATE_LIMIT   LOGIN_RATE_LIMIT of the cluster (default 40/minute)
  CLUSTER_BIG_TIFF           pixels a side of the GeoTIFF whose job a worker dies in (2500)
  CLUSTER_APP_SRC            the `src` folder of the Worldbase to run (default this checkout's)
  CLUSTER_KEEP               1: keep the temp dir (logs, data) for a post-mortem
Exit status 0 only when every check passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import traceback
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tests.cluster import checks, crossnode, objects, readback
from tests.cluster.backup_drill import (
    BackupRun,
    check_backup_holds_objects,
    replicate_objects,
    restore_drill,
    run_backup,
)
from tests.cluster.checks import Check
from tests.cluster.faults import ALL_FAULTS, FAULTS, FaultWindow
from tests.cluster.processes import ROOT, Cluster
from tests.cluster.records import Record, Recorder, records_json
from tests.cluster.subscriber import osm_subscriber
from tests.cluster.workload import World


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


LOAD_SECONDS = _env_float("CLUSTER_LOAD_SECONDS", 210)
THROUGHPUT_SECONDS = _env_float("CLUSTER_THROUGHPUT_SECONDS", 8)
THROUGHPUT_ROUNDS = int(_env_float("CLUSTER_THROUGHPUT_ROUNDS", 2))
USERS = int(_env_float("CLUSTER_USERS", 4))
CONCURRENCY = int(_env_float("CLUSTER_CONCURRENCY", 8))
RECOVERY_BOUND = _env_float("CLUSTER_RECOVERY_BOUND", 20)
JOB_END_BOUND = _env_float("CLUSTER_JOB_END_BOUND", 120)
BUDGET = _env_float("CLUSTER_BUDGET_SECONDS", 600)
REPORT = Path(os.environ.get("CLUSTER_REPORT", ROOT / "bench" / "results" / "cluster-latest.json"))
STALE = _env_float("CLUSTER_JOB_STALE_SECONDS", 10)
WARMUP = 10.0
HEAVY_PERIOD = 15.0


def fault_names() -> list[str]:
    text = os.environ.get("CLUSTER_FAULTS", ",".join(ALL_FAULTS)).strip()
    if text in ("", "none"):
        return []
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        raise SystemExit(f"CLUSTER_FAULTS: unknown {unknown}; known: {', '.join(ALL_FAULTS)}")
    return names


def login_limit() -> int:
    return int(os.environ.get("CLUSTER_LOGIN_RATE_LIMIT", "40/minute").split("/")[0])


class Run:
    def __init__(self, cluster: Cluster, tmp: Path) -> None:
        self.cluster = cluster
        self.tmp = tmp
        self.recorder = Recorder()
        self.world = World(cluster, self.recorder, tmp, uuid.uuid4().hex[:8])
        self.world.signin_budget = max(1, login_limit() // 2 - 2)
        self.checks: list[Check] = []
        self.windows: list[FaultWindow] = []
        self.figures: dict[str, Any] = {}
        self.backup: BackupRun | None = None
        self.phase = "start"

    def log(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')} +{self.recorder.now():6.1f}s] {text}", flush=True)

    async def read_mix(self, apis: list[int]) -> list[Record]:
        """One phase of the read mix (3 tile reads to 2 feature reads) through the proxy,
        closed loop, with nginx sending to `apis` only."""
        await asyncio.to_thread(self.cluster.reload_nginx, apis)
        recorder = Recorder()
        world = self.world
        world.rec, saved = recorder, world.rec
        stop = asyncio.Event()

        async def reader(client: Any) -> None:
            n = 0
            while not stop.is_set():
                await (world.tile_read if n % 5 < 3 else world.feature_read)(client)
                n += 1

        try:
            async with world.client(self.cluster.proxy_url) as client:
                tasks = [asyncio.create_task(reader(client)) for _ in range(CONCURRENCY * 2)]
                await asyncio.sleep(THROUGHPUT_SECONDS)
                stop.set()
                await asyncio.gather(*tasks)
        finally:
            world.rec = saved
        return recorder.records

    async def throughput(self) -> dict[str, Any]:
        """The read mix with one, then two API processes, alternated THROUGHPUT_ROUNDS times
        (the machine is shared: medians of interleaved rounds, not one long phase each)."""
        rounds: dict[int, list[list[Record]]] = {1: [], 2: []}
        for _ in range(THROUGHPUT_ROUNDS):
            for apis in ([0], [0, 1]):
                rounds[len(apis)].append(await self.read_mix(apis))
        result = {}
        for count, phases in rounds.items():
            rates = []
            for records in phases:
                elapsed = max(r.end for r in records) - min(r.start for r in records)
                rates.append(round(sum(200 <= r.status < 300 for r in records) / elapsed, 1))
            every = [r for records in phases for r in records]
            result[f"{count}_api"] = {
                "api_processes": count,
                "seconds_per_round": THROUGHPUT_SECONDS,
                "requests_per_s_rounds": rates,
                "requests_per_s": round(statistics.median(rates), 1),
                "errors": sum(not 200 <= r.status < 300 for r in every),
                "kinds": checks.latency_table(every),
            }
        return result

    async def faults_and_backup(self, names: list[str]) -> None:
        """Backup first (under load, before any fault), then the faults spread over the rest."""
        await asyncio.sleep(WARMUP)
        self.log("backup under load")
        self.backup = await run_backup(self.cluster, self.tmp / "backups", self.recorder.now)
        self.log(f"backup ended rc={self.backup.returncode} ({self.backup.path})")
        await asyncio.to_thread(replicate_objects, self.cluster, self.backup)
        load_end = self.load_started + LOAD_SECONDS
        tail = max(RECOVERY_BOUND, 15.0)
        async with self.world.client(self.cluster.proxy_url, 8) as client:
            for index, name in enumerate(names):
                left = load_end - tail - self.recorder.now()
                slots = len(names) - index
                await asyncio.sleep(max(0.0, left / slots - 20.0) if left > 0 else 0.0)
                self.log(f"fault {name}")
                window = await FAULTS[name](self.cluster, self.world, client)
                self.windows.append(window)
                self.log(
                    f"fault {name} over after {window.end - window.start:.1f} s {window.detail}"
                )
                await self.world.probe(client, window.end, RECOVERY_BOUND + 5)
                # Recovery before the next fault.
                await asyncio.sleep(max(0.0, window.end + RECOVERY_BOUND - self.recorder.now()))

    async def load(self, names: list[str]) -> None:
        world = self.world
        world.stop.clear()
        self.load_started = self.recorder.now()
        async with world.client(self.cluster.proxy_url) as client:
            tasks: list[asyncio.Task[Any]] = [
                asyncio.create_task(world.virtual_user(client, 0.3)) for _ in range(CONCURRENCY)
            ]
            tasks.append(asyncio.create_task(world.heavy_loop(client, HEAVY_PERIOD)))
            for name, base, via in (
                ("sub-api0", self.cluster.api_url(0), "api0"),
                ("sub-api1", self.cluster.api_url(1), "api1"),
                ("sub-proxy", self.cluster.proxy_url, "proxy"),
            ):
                ws_base = base.replace("http://", "ws://")
                tasks.append(asyncio.create_task(osm_subscriber(world, name, ws_base, via)))
            faults = asyncio.create_task(self.faults_and_backup(names))
            # The load runs its time, and longer if the faults are not done yet.
            await asyncio.sleep(LOAD_SECONDS)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(faults), 120)
            if not faults.done():
                faults.cancel()
                self.figures["faults_unfinished"] = True
            elif faults.exception() is not None:
                raise faults.exception()  # type: ignore[misc]
            await asyncio.sleep(5.0)  # the last writes' events arrive
            world.stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
        self.figures["load_seconds"] = round(self.recorder.now() - self.load_started, 1)

    async def main(self) -> None:
        names = fault_names()
        self.phase = "setup"
        async with self.world.client(self.cluster.proxy_url) as client:
            await self.world.setup(client, USERS)
        self.log(f"setup done: {USERS} users, run {self.world.run_id}")
        self.phase = "cross-node"
        self.checks.append(await crossnode.check_events(self.cluster, self.world))
        self.checks.append(
            await crossnode.check_rate_limit(self.cluster, self.world, login_limit())
        )
        self.checks.append(await crossnode.check_tile_invalidation(self.cluster, self.world))
        self.log(
            "cross-node checks done: "
            + ", ".join(f"{c.name[:30]}={'ok' if c.ok else 'FAIL'}" for c in self.checks)
        )
        self.phase = "throughput"
        throughput = await self.throughput()
        self.figures["throughput_read_mix"] = throughput
        self.log(
            f"throughput (median of {THROUGHPUT_ROUNDS} rounds): 1 API "
            f"{throughput['1_api']['requests_per_s']} req/s, 2 APIs "
            f"{throughput['2_api']['requests_per_s']} req/s"
        )
        self.phase = "load"
        self.log(f"load for {LOAD_SECONDS:.0f} s with faults {names}")
        await self.load(names)
        self.phase = "checks"
        records = [r for r in self.recorder.records if r.kind != "setup"]
        self.checks += checks.check_statuses(records, self.windows, RECOVERY_BOUND)
        self.checks.append(checks.per_window(records, self.windows, RECOVERY_BOUND))
        self.checks.append(checks.check_ws_delivery(self.world, self.windows, RECOVERY_BOUND))
        self.log("waiting for the jobs to end")
        self.checks.append(await readback.check_jobs_end(self.cluster, JOB_END_BOUND))
        for window in self.windows:
            if "job_id" in window.detail:  # the job a killed worker was running
                self.checks.append(
                    readback.check_killed_job(self.cluster, window, self.recorder.now(), STALE)
                )
        async with self.world.client(self.cluster.proxy_url) as client:
            self.checks.append(await readback.check_acked(self.world, client, self.cluster))
            self.checks.append(await readback.check_exports_and_uploads(self.world, client))
        self.checks.append(
            await asyncio.to_thread(
                objects.check_rows_vs_objects, self.cluster, "worldbase", "worldbase-cluster"
            )
        )
        self.figures["latency_under_load"] = checks.latency_table(records)
        if self.backup is not None:
            self.log("backup drill: restore into an empty database and bucket")
            self.checks.append(check_backup_holds_objects(self.backup))
            self.checks.append(await asyncio.to_thread(restore_drill, self.cluster, self.backup))
        else:
            failed = Check("backup under load restores ...", False)
            failed.fail("no backup was taken (the load ended before it)")
            self.checks.append(failed)


EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Timeout|Refused)\w*\b")
REQUEST_ID = re.compile(r'request_id\\?":\s*\\?"([0-9a-f]{32})')


def server_exceptions(cluster: Cluster) -> dict[str, str]:
    """request id -> the last line of the exception the API logged for it (JSON logs)."""
    found: dict[str, str] = {}
    for name in ("api0", "api1"):
        proc = cluster.procs.get(name)
        if proc is None or not proc.log.exists():
            continue
        for line in proc.log.read_text(errors="replace").splitlines():
            if not line.startswith("{"):
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("request_id") and entry.get("exc"):
                lines = entry["exc"].strip().splitlines()
                # The exception's own line, not SQLAlchemy's "(Background on this error…)".
                named = [ln for ln in lines if EXCEPTION_LINE.match(ln)]
                found[entry["request_id"]] = f"{name}: {(named or lines)[-1]}"[:300]
    return found


def annotate(run: Run) -> None:
    """Each failed request in the evidence gets the exception its API process logged."""
    exceptions = server_exceptions(run.cluster)
    for check in run.checks:
        for item in check.evidence:
            if isinstance(item, dict) and isinstance(item.get("error"), str):
                match = REQUEST_ID.search(item["error"])
                if match and match.group(1) in exceptions:
                    item["server_exception"] = exceptions[match.group(1)]


def write_report(run: Run, started: float, error: str | None) -> dict[str, Any]:
    report = {
        "passed": error is None and all(c.ok for c in run.checks) and bool(run.checks),
        "error": error,
        "phase_reached": run.phase,
        "time_budget_s": BUDGET,
        "time_taken_s": round(time.monotonic() - started, 1),
        "settings": {
            "load_seconds": LOAD_SECONDS,
            "faults": [w.name for w in run.windows],
            "users": USERS,
            "concurrency": CONCURRENCY,
            "recovery_bound_s": RECOVERY_BOUND,
            "job_end_bound_s": JOB_END_BOUND,
            "login_limit_per_minute": login_limit(),
        },
        "failed_checks": [c.name for c in run.checks if not c.ok],
        "checks": [asdict(c) for c in run.checks],
        "figures": run.figures,
        "fault_windows": [asdict(w) for w in run.windows],
        "requests": len(run.recorder.records),
        "failed_requests": [
            r for r in records_json(run.recorder.records) if not 200 <= r["status"] < 300
        ][:300],
        "process_starts": {name: proc.starts for name, proc in run.cluster.procs.items()},
    }
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=2, default=str))
    return report


def _brief(item: Any) -> str:
    if isinstance(item, dict) and "kind" in item and "status" in item and "request" in item:
        cause = item.get("server_exception") or (item.get("error") or "")[:120]
        return (
            f"{item['kind']} {item['status']} {item['request']} at {item['start_s']} s "
            f"(window {item['window']}): {cause}"
        )
    return json.dumps(item, default=str)[:300]


def print_summary(report: dict[str, Any]) -> None:
    print("\n=== cluster test ===")
    for check in report["checks"]:
        mark = "ok  " if check["ok"] else "FAIL"
        print(f"  {mark} {check['name']}")
        if not check["ok"]:
            groups = check["figures"].get("failures_by_group")
            if groups:
                print(f"         failures by kind/status/window: {json.dumps(groups)}")
            for item in check["evidence"][:6]:
                print(f"         {_brief(item)}")
    throughput = report["figures"].get("throughput_read_mix")
    if throughput:
        for key, phase in throughput.items():
            kinds = ", ".join(
                f"{k} p50 {v['p50_ms']} ms p99 {v['p99_ms']} ms" for k, v in phase["kinds"].items()
            )
            rounds = phase.get("requests_per_s_rounds")
            print(f"  read mix, {key}: {phase['requests_per_s']} req/s, rounds {rounds} ({kinds})")
    for window in report["checks"]:
        if window["name"].startswith("each kind recovers"):
            for name, w in window["figures"].get("windows", {}).items():
                print(
                    f"  fault {name}: {w['end_s'] - w['start_s']:.1f} s, errors during "
                    f"{w['errors_during']}, slowest recovery {w['max_recovery_s']} s"
                )
    if report["error"]:
        print(f"  ERROR: {report['error'][:2000]}")
    print(f"  report: {REPORT}")
    print(f"  time budget {report['time_budget_s']:.0f} s, taken {report['time_taken_s']:.0f} s")
    if report["passed"]:
        print("PASSED")
    else:
        failed = f"{len(report['failed_checks'])} checks"
        print(
            f"FAILED: {failed}"
            + (f", stopped by an error in {report['phase_reached']}" if report["error"] else "")
        )


def main() -> int:
    started = time.monotonic()
    print(f"cluster test: time budget {BUDGET:.0f} s, load {LOAD_SECONDS:.0f} s", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="worldbase-cluster-"))
    tmp.chmod(0o755)
    cluster = Cluster(tmp / "cluster", namespace=f"cluster-{os.getpid()}")
    run = Run(cluster, tmp)
    error: str | None = None
    try:
        run.phase = "start"
        cluster.start_all()
        run.log(f"cluster up in {time.monotonic() - started:.0f} s: {cluster.ports}")
        left = BUDGET - (time.monotonic() - started) - 30  # the report and clean-up
        asyncio.run(asyncio.wait_for(run.main(), left))
    except TimeoutError:
        error = f"time budget exceeded in phase {run.phase}"
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()[-3000:]}"
    finally:
        for proc in cluster.procs.values():
            if not proc.alive() and proc.name != "postgres" and run.phase in ("start", "setup"):
                print(f"--- {proc.name} log ---\n{proc.tail(2000)}")
        cluster.stop_all()
        with contextlib.suppress(Exception):
            annotate(run)
        report = write_report(run, started, error)
        if os.environ.get("CLUSTER_KEEP") == "1":
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print_summary(report)
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
