"""The checks: each returns a `Check` (name, ok, figures, evidence) for the report.

A check fails on the first piece of evidence against it, and its evidence lists the
requests (kind, status, time, fault window) or objects that made it fail, capped so the
report stays readable.
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.cluster.faults import FaultWindow
from tests.cluster.processes import Cluster
from tests.cluster.workload import Record, World, sha256

EVIDENCE_CAP = 60
GROUP_EXAMPLES = 3  # examples kept per (kind, status, window)


@dataclass
class Check:
    name: str
    ok: bool
    figures: dict[str, Any] = field(default_factory=dict)
    evidence: list[Any] = field(default_factory=list)

    def fail(self, item: Any, group: str | None = None) -> None:
        """Count a failure; with `group`, the evidence keeps the first few of each group and
        `figures["failures_by_group"]` counts them all."""
        self.ok = False
        self.figures["failures"] = self.figures.get("failures", 0) + 1
        if group is None:
            if len(self.evidence) < EVIDENCE_CAP:
                self.evidence.append(item)
            return
        groups = self.figures.setdefault("failures_by_group", {})
        groups[group] = groups.get(group, 0) + 1
        if groups[group] <= GROUP_EXAMPLES and len(self.evidence) < EVIDENCE_CAP:
            self.evidence.append(item)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return round(ordered[index] * 1000, 1)  # milliseconds


def latency_table(records: list[Record]) -> dict[str, Any]:
    by_kind: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        by_kind[record.kind].append(record)
    table = {}
    for kind, rows in sorted(by_kind.items()):
        ok = [r.end - r.start for r in rows if 200 <= r.status < 300]
        table[kind] = {
            "requests": len(rows),
            "ok": len(ok),
            "p50_ms": percentile(ok, 0.5),
            "p99_ms": percentile(ok, 0.99),
            "statuses": dict(Counter(str(r.status) for r in rows)),
        }
    return table


def _window_of(record: Record, windows: list[FaultWindow], bound: float) -> str | None:
    for window in windows:
        if record.start <= window.end + bound and record.end >= window.start:
            return window.name
    return None


def _describe(record: Record, window: str | None) -> dict[str, Any]:
    return {
        "kind": record.kind,
        "request": f"{record.method} {record.path}",
        "via": record.via,
        "status": record.status,
        "retry_after": record.retry_after,
        "start_s": round(record.start, 2),
        "end_s": round(record.end, 2),
        "window": window,
        "error": record.error,
    }


def check_statuses(records: list[Record], windows: list[FaultWindow], bound: float) -> list[Check]:
    """Failures are 503 + Retry-After, only in a fault window (or its recovery bound)."""
    never_500 = Check("no 5xx other than 503, no unanswered request", True)
    with_retry = Check("every 503 carries Retry-After", True)
    outside = Check("no failure outside fault windows (+ recovery bound), no 4xx in them", True)
    for record in records:
        window = _window_of(record, windows, bound)
        group = f"{record.kind} {record.status} in {window or 'no fault window'}"
        if record.status == 0 or (record.status >= 500 and record.status != 503):
            never_500.fail(_describe(record, window), group)
        if record.status == 503 and not record.retry_after:
            with_retry.fail(_describe(record, window), group)
        if not 200 <= record.status < 300 and window is None:
            outside.fail(_describe(record, window), group)
        if 400 <= record.status < 500 and window is not None and record.status != 429:
            # A 4xx inside a window is a lost write or a wrong answer, not a fail-soft 503.
            outside.fail(_describe(record, window) | {"note": "4xx inside a fault window"}, group)
    return [never_500, with_retry, outside]


def per_window(records: list[Record], windows: list[FaultWindow], bound: float) -> Check:
    """Statuses per fault window and request kind, and each kind's recovery time."""
    check = Check(f"each kind recovers within {bound:.0f} s of the fault's end", True)
    report: dict[str, Any] = {}
    for window in windows:
        during: dict[str, Counter[str]] = defaultdict(Counter)
        after: dict[str, Counter[str]] = defaultdict(Counter)
        for record in records:
            if record.start <= window.end and record.end >= window.start:
                during[record.kind][str(record.status)] += 1
            elif window.end < record.start <= window.end + bound:
                after[record.kind][str(record.status)] += 1
        # Recovery of a kind: from the fault's end to its first success (the harness probes
        # every kind right after each fault), looking no further than the next fault.
        following = [w.start for w in windows if w.start > window.end]
        horizon = min(following, default=float("inf"))
        recovery: dict[str, float | None] = {}
        for kind in sorted({r.kind for r in records}):
            later = sorted(
                (r for r in records if r.kind == kind and window.end <= r.start < horizon),
                key=lambda r: r.start,
            )
            if not later:
                continue
            first_ok = next((r for r in later if 200 <= r.status < 300), None)
            seconds = None if first_ok is None else round(first_ok.end - window.end, 2)
            recovery[kind] = seconds
            if seconds is None or seconds > bound:
                check.fail(
                    {
                        "window": window.name,
                        "kind": kind,
                        "recovery_s": seconds,
                        "first_requests_after": [_describe(r, window.name) for r in later[:3]],
                    }
                )
        report[window.name] = {
            "start_s": round(window.start, 2),
            "end_s": round(window.end, 2),
            "detail": window.detail,
            "during": {k: dict(v) for k, v in sorted(during.items())},
            "recovery_period": {k: dict(v) for k, v in sorted(after.items())},
            "errors_during": sum(
                n for c in during.values() for s, n in c.items() if not s.startswith("2")
            ),
            "recovery_s": recovery,
            "max_recovery_s": max((s for s in recovery.values() if s is not None), default=None),
        }
    check.figures["windows"] = report
    return check


# --- acknowledged writes, read back -----


async def _get(client: httpx.AsyncClient, url: str, **kwargs: Any) -> httpx.Response | None:
    # The cluster is quiet now: a read gets three tries (a stray 503 is not a lost write).
    for _ in range(3):
        try:
            response = await client.get(url, **kwargs)
        except httpx.HTTPError:
            response = None
        if response is not None and response.status_code != 503:
            return response
        await asyncio.sleep(1.0)
    return response


async def check_acked(world: World, client: httpx.AsyncClient, cluster: Cluster) -> Check:
    check = Check("every acknowledged write is readable afterwards (files byte-exact)", True)
    acked = world.acked
    counts: dict[str, int] = {}
    # Features: every acked id is in its layer.
    by_layer: dict[str, set[str]] = defaultdict(set)
    for layer_id, feature_id, _ in acked.features:
        by_layer[layer_id].add(feature_id)
    owners = {u.layer_id: u for u in world.users}
    for layer_id, wanted in by_layer.items():
        found: set[str] = set()
        offset = 0
        while True:
            page = await _get(
                client,
                f"/api/layers/{layer_id}/features",
                params={"limit": 1000, "offset": offset},
                headers=owners[layer_id].headers,
            )
            if page is None or page.status_code != 200:
                check.fail(
                    {
                        "what": "feature list",
                        "layer": layer_id,
                        "status": None if page is None else page.status_code,
                    }
                )
                break
            features = page.json()["features"]
            found |= {str(f["id"]) for f in features}
            for feature in features:
                edits = acked.feature_edits.get(str(feature["id"]))
                got = (feature.get("properties") or {}).get("edit")
                if edits and got not in edits:
                    check.fail(
                        {
                            "what": "feature edit",
                            "id": feature["id"],
                            "got": got,
                            "acked": edits[-3:],
                        }
                    )
            if len(features) < 1000:
                break
            offset += 1000
        for missing in sorted(wanted - found):
            check.fail({"what": "feature", "layer": layer_id, "id": missing})
    counts["features"] = len(acked.features)
    counts["feature_edits"] = sum(len(v) for v in acked.feature_edits.values())
    # Comments: each in its map's comment list, with its content.
    contents: dict[str, str] = {}
    for index, user in enumerate(world.users):
        if not any(i == index for _, _, i in acked.comments):
            continue
        offset = 0
        while True:
            page = await _get(
                client,
                "/api/comments",
                params={"mapId": user.map_id, "format": "flat", "limit": 100, "offset": offset},
                headers=user.headers,
            )
            if page is None or page.status_code != 200:
                check.fail(
                    {
                        "what": "comment list",
                        "map": user.map_id,
                        "status": None if page is None else page.status_code,
                    }
                )
                break
            items = page.json()["items"]
            contents |= {str(c["id"]): c["content"] for c in items}
            if len(items) < 100:
                break
            offset += 100
    for comment_id, content, _ in acked.comments:
        if contents.get(comment_id) != content:
            check.fail({"what": "comment", "id": comment_id, "got": contents.get(comment_id)})
    counts["comments"] = len(acked.comments)
    # Map edits: the map's name is one that was acknowledged (the last writer wins).
    for user in world.users:
        names = acked.map_names.get(user.map_id)
        if not names:
            continue
        response = await _get(client, f"/api/maps/{user.map_id}", headers=user.headers)
        if (
            response is None
            or response.status_code != 200
            or response.json().get("name") not in names
        ):
            check.fail(
                {
                    "what": "map name",
                    "map": user.map_id,
                    "got": None if response is None else response.text[:120],
                }
            )
    counts["map_edits"] = sum(len(v) for v in acked.map_names.values())
    # D&D images: the file now equals the bytes read right after the write, and the bucket's.
    s3 = cluster.s3_client()
    for image_id, digest in acked.images:
        meta = await _get(client, f"/api/v1/images/{image_id}", params={"include_data": "false"})
        file = await _get(client, f"/api/v1/images/{image_id}/file")
        if meta is None or file is None or meta.status_code != 200 or file.status_code != 200:
            check.fail(
                {
                    "what": "dnd image",
                    "id": image_id,
                    "status": [None if r is None else r.status_code for r in (meta, file)],
                }
            )
            continue
        got = sha256(file.content)
        key = meta.json()["storage_path_full"]
        body = await asyncio.to_thread(s3.get_object, Bucket=_bucket(), Key=key)
        stored = sha256(await asyncio.to_thread(body["Body"].read))
        if (digest is not None and got != digest) or got != stored:
            check.fail(
                {
                    "what": "dnd image bytes",
                    "id": image_id,
                    "after_write": digest,
                    "now": got,
                    "bucket": stored,
                }
            )
    counts["images"] = len(acked.images)
    # Portraits: byte-exact against the read right after the upload.
    for character_id, digest in acked.portraits:
        response = await _get(
            client, f"/api/characters/{character_id}/image", headers=world.admin.headers
        )
        if response is None or response.status_code != 200:
            check.fail(
                {
                    "what": "portrait",
                    "character": character_id,
                    "status": None if response is None else response.status_code,
                }
            )
        elif digest is not None and sha256(response.content) != digest:
            check.fail({"what": "portrait bytes", "character": character_id})
    counts["portraits"] = len(acked.portraits)
    # OSM nodes: every acked node is stored.
    stored_ids: set[str] = set()
    offset = 0
    while True:
        page = await _get(
            client,
            "/objects",
            params={
                "type": "node",
                "tag": f"cluster={world.run_id}",
                "limit": 100,
                "offset": offset,
            },
        )
        if page is None or page.status_code != 200:
            check.fail(
                {"what": "osm object list", "status": None if page is None else page.status_code}
            )
            break
        rows = page.json()
        stored_ids |= {str(o["osm_id"]) for o in rows}
        if len(rows) < 100:
            break
        offset += 100
    for osm_id, _, _ in acked.osm_nodes:
        if str(osm_id) not in stored_ids:
            check.fail({"what": "osm node", "osm_id": osm_id})
    counts["osm_nodes"] = len(acked.osm_nodes)
    check.figures["acknowledged"] = counts
    return check


def _bucket() -> str:
    from tests.cluster.processes import BUCKET

    return BUCKET


async def check_exports_and_uploads(world: World, client: httpx.AsyncClient) -> Check:
    """Each acked export and GeoTIFF upload ended; a finished one serves its file/tiles."""
    check = Check("every acknowledged export and upload finished, and serves its result", True)
    ends: Counter[str] = Counter()
    for export_id, fmt, _ in world.acked.exports:
        status = await _get(client, f"/api/export/status/{export_id}", headers=world.admin.headers)
        body = status.json() if status is not None and status.status_code == 200 else {}
        ends[f"export:{body.get('status')}"] += 1
        if body.get("status") == "completed":
            download = await _get(client, body["download_url"], headers=world.admin.headers)
            if download is None or download.status_code != 200 or not download.content:
                check.fail({"what": "export download", "id": export_id, "format": fmt})
        elif body.get("status") != "failed" or not body.get("error"):
            check.fail(
                {
                    "what": "export not ended (or failed without a reason)",
                    "id": export_id,
                    "format": fmt,
                    "body": body,
                }
            )
    for job_id, what, _ in world.acked.jobs:
        job = await _get(client, f"/api/jobs/{job_id}", headers=world.admin.headers)
        body = job.json() if job is not None and job.status_code == 200 else {}
        ends[f"{what}:{body.get('status')}"] += 1
        if body.get("status") == "succeeded" and what == "geotiff_upload":
            layer_id = (body.get("result") or {}).get("layer_id")
            owner = next((u for u in world.users if u.id == body.get("owner_id")), world.admin)
            tile = await _get(
                client, f"/api/layers/{layer_id}/tiles/10/520/330", headers=owner.headers
            )
            if tile is None or tile.status_code not in (200, 204):
                check.fail(
                    {
                        "what": "uploaded layer tile",
                        "job": job_id,
                        "layer": layer_id,
                        "status": None if tile is None else tile.status_code,
                    }
                )
        elif body.get("status") != "failed" or not body.get("error"):
            check.fail(
                {
                    "what": "job not ended (or failed without a reason)",
                    "job": job_id,
                    "kind": what,
                    "status": body.get("status"),
                }
            )
    check.figures["ends"] = dict(ends)
    return check


def jobs_table(cluster: Cluster) -> list[dict[str, Any]]:
    out = cluster.psql(
        "worldbase",
        "SELECT coalesce(json_agg(json_build_object('id', id, 'kind', kind, 'status', status,"
        " 'error', error, 'attempts', attempts)), '[]') FROM jobs",
    )
    return list(json.loads(out.strip() or "[]"))


def check_killed_job(cluster: Cluster, window: FaultWindow, now: float, stale: float) -> Check:
    """The job a killed worker was running is recovered (re-run, or failed with a reason)
    soon after: within the stale-job setting and 30 s of the kill."""
    bound = stale + 30.0
    check = Check(f"the job of the killed worker ends within {bound:.0f} s of the kill", True)
    job_id = window.detail["job_id"]
    out = cluster.psql(
        "worldbase",
        "SELECT json_build_object('status', status, 'attempts', attempts, 'error', error,"
        " 'ended_s_ago', extract(epoch FROM now() - finished_at))"
        f" FROM jobs WHERE id = '{job_id}'",
    )
    row: dict[str, Any] = json.loads(out.strip()) if out.strip() else {"status": "no such job"}
    ended_ago = row.pop("ended_s_ago", None)
    row["ended_s_after_kill"] = (
        None if ended_ago is None else round(now - ended_ago - window.start, 1)
    )
    window.detail["job_end"] = row
    check.figures = dict(row) | {
        "job_id": job_id,
        "status_at_kill": window.detail.get("job_status_at_kill"),
    }
    ended = row["status"] == "succeeded" or (row["status"] == "failed" and row.get("error"))
    if not ended or row["ended_s_after_kill"] is None or row["ended_s_after_kill"] > bound:
        check.fail(row | {"job_id": job_id})
    return check


async def check_jobs_end(cluster: Cluster, bound: float) -> Check:
    """Every job in the table ends: succeeded, cancelled, or failed with a reason."""
    check = Check(f"every accepted job ends within {bound:.0f} s of the load's end", True)
    loop = asyncio.get_running_loop()
    started = loop.time()
    rows: list[dict[str, Any]] = []
    while loop.time() - started < bound:
        rows = await asyncio.to_thread(jobs_table, cluster)
        if not any(r["status"] in ("queued", "running") for r in rows):
            break
        await asyncio.sleep(2.0)
    check.figures["waited_s"] = round(loop.time() - started, 1)
    check.figures["statuses"] = dict(Counter(f"{r['kind']}:{r['status']}" for r in rows))
    for row in rows:
        if row["status"] in ("queued", "running"):
            check.fail(
                {
                    "job": row["id"],
                    "kind": row["kind"],
                    "status": row["status"],
                    "attempts": row["attempts"],
                }
            )
        elif row["status"] == "failed" and not (row["error"] or "").strip():
            check.fail({"job": row["id"], "kind": row["kind"], "status": "failed, no reason"})
    check.figures["failed_with_reason"] = [
        {"kind": r["kind"], "error": (r["error"] or "")[:200]}
        for r in rows
        if r["status"] == "failed"
    ][:EVIDENCE_CAP]
    return check


# --- objects vs rows -----

REFERENCES_SQL = """
SELECT storage_path_full FROM image_assets
UNION ALL SELECT storage_path_thumbnail FROM image_assets
UNION ALL SELECT image_path FROM characters WHERE image_path IS NOT NULL
UNION ALL SELECT thumbnail_path FROM characters WHERE thumbnail_path IS NOT NULL
UNION ALL SELECT model_path FROM characters WHERE model_path IS NOT NULL
UNION ALL SELECT file_path FROM export_jobs WHERE file_path IS NOT NULL
UNION ALL SELECT result_path FROM reconstruction_jobs WHERE result_path IS NOT NULL
UNION ALL SELECT source_config::text FROM layers WHERE source_type = 'geotiff'
"""
# Object prefixes whose every object a row must name (the rest are caches or staging).
OWNED_PREFIXES = ("dnd/images/", "bestiary/", "samsyn/cogs/")
STORAGE_URL = re.compile(r"storage://([^\"\s]+)")


# Derived variants stored beside a model (`model-x.lod1.glb`, `model-x.draco.glb`).
VARIANT = re.compile(r"\.(lod\d+|draco)(?=\.)")


def referenced_keys(cluster: Cluster, database: str) -> set[str]:
    keys: set[str] = set()
    for line in cluster.psql(database, REFERENCES_SQL).splitlines():
        line = line.strip()
        if not line:
            continue
        urls = STORAGE_URL.findall(line)
        if urls:
            keys |= set(urls)
        elif not line.startswith(("http://", "https://", "{")):
            keys.add(line)
    return keys


def bucket_keys(cluster: Cluster, bucket: str) -> dict[str, dict[str, Any]]:
    s3 = cluster.s3_client()
    keys: dict[str, dict[str, Any]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            keys[obj["Key"]] = {"size": obj["Size"], "etag": obj["ETag"].strip('"')}
    return keys


def check_rows_vs_objects(cluster: Cluster, database: str, bucket: str) -> Check:
    check = Check(f"rows and objects agree ({database} / {bucket}): no missing, no orphan", True)
    refs = referenced_keys(cluster, database)
    objects = bucket_keys(cluster, bucket)
    owned = [k for k in objects if k.startswith(OWNED_PREFIXES)]
    # A variant belongs to the object it was derived from.
    orphans = sorted(k for k in owned if VARIANT.sub("", k) not in refs)
    missing = sorted(refs - set(objects))
    for key in missing:
        check.fail({"what": "row names a missing object", "key": key})
    for key in orphans:
        check.fail({"what": "orphan object (no row names it)", "key": key})
    prefixes = Counter("/".join(k.split("/")[:2]) for k in objects)
    check.figures |= {
        "referenced": len(refs),
        "objects": len(objects),
        "missing": len(missing),
        "orphans": len(orphans),
        "objects_by_prefix": dict(prefixes),
    }
    return check


# --- WebSocket delivery during the load -----


def check_ws_delivery(world: World, windows: list[FaultWindow], bound: float) -> Check:
    """A subscriber connected throughout an acked ingest (outside fault windows) got its event."""
    check = Check("OSM WebSocket subscribers get every acked ingest (outside fault windows)", True)
    figures = {}
    for log in world.ws_logs:
        expected = received = 0
        for osm_id, start, end in world.acked.osm_nodes:
            if any(start <= w.end + bound and end >= w.start for w in windows):
                continue
            if not any(a <= start - 0.5 and b >= end + 3.0 for a, b in log.intervals):
                continue
            expected += 1
            if str(osm_id) in log.received:
                received += 1
            else:
                check.fail(
                    {
                        "subscriber": log.name,
                        "via": log.via,
                        "osm_id": osm_id,
                        "acked_at_s": round(end, 2),
                    }
                )
        delays = [
            log.received[str(i)] - e for i, _, e in world.acked.osm_nodes if str(i) in log.received
        ]
        figures[log.name] = {
            "via": log.via,
            "connections": len(log.intervals),
            "expected": expected,
            "received": received,
            "received_total": len(log.received),
            "p50_delay_ms": percentile([max(d, 0.0) for d in delays], 0.5),
            "drops": log.errors[:10],
        }
    check.figures["subscribers"] = figures
    if not world.ws_logs:
        check.fail("no subscriber ran")
    return check


def summarize(checks: list[Check]) -> dict[str, Any]:
    return {"passed": all(c.ok for c in checks), "failed": [c.name for c in checks if not c.ok]}


def stdev(values: list[float]) -> float:
    return statistics.pstdev(values) if len(values) > 1 else 0.0
