"""Read-back after the load: every acknowledged write, export and job, through the proxy
(and the database for the jobs table)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict
from typing import Any

import httpx

from tests.cluster.checks import EVIDENCE_CAP, Check
from tests.cluster.faults import FaultWindow
from tests.cluster.processes import BUCKET, Cluster
from tests.cluster.records import sha256
from tests.cluster.workload import World

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
        body = await asyncio.to_thread(s3.get_object, Bucket=BUCKET, Key=key)
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
