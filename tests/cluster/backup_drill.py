"""Backups under load: `worldbase backup` while the load runs, then restored into an empty
database and an empty bucket, compared with the backup's manifest."""

from __future__ import annotations

import asyncio
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.cluster.checks import EVIDENCE_CAP, Check
from tests.cluster.objects import bucket_keys, check_rows_vs_objects
from tests.cluster.processes import BIN, BUCKET, Cluster

RESTORE_DB = "worldbase_restore"
RESTORE_BUCKET = "worldbase-restore"


@dataclass
class BackupRun:
    start: float
    end: float
    returncode: int
    output: str
    path: Path | None
    copied: int = 0
    gone: list[str] = field(default_factory=list)


async def run_backup(cluster: Cluster, folder: Path, now: Any) -> BackupRun:
    start = now()
    proc = await asyncio.create_subprocess_exec(
        str(BIN / "worldbase"),
        "backup",
        env=cluster.app_env(BACKUP_DIR=str(folder), WORLDBASE_DATA_DIR=str(folder / "data")),
        cwd=cluster.root,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(proc.communicate(), 180)
    except TimeoutError:
        proc.kill()
        output = b"timed out after 180 s"
    archives = sorted(folder.glob("worldbase-*.tar.gz"))
    return BackupRun(
        start,
        now(),
        proc.returncode or 0,
        output.decode(errors="replace")[-2000:],
        archives[-1] if archives else None,
    )


def _manifest(path: Path) -> dict[str, Any]:
    with tarfile.open(path, "r:gz") as tar:
        member = tar.extractfile("manifest.json")
        assert member is not None
        return dict(json.load(member))


def replicate_objects(cluster: Cluster, run: BackupRun) -> None:
    """The objects a backup lists but does not archive (S3: they stay in their bucket),
    copied into the empty restore bucket at once, as bucket replication would keep them."""
    if run.path is None:
        return
    manifest = _manifest(run.path)
    s3 = cluster.s3_client()
    s3.create_bucket(Bucket=RESTORE_BUCKET)
    if manifest["objects_archived"]:
        return
    for entry in manifest["objects"]:
        try:
            s3.copy_object(
                Bucket=RESTORE_BUCKET,
                Key=entry["key"],
                CopySource={"Bucket": BUCKET, "Key": entry["key"]},
            )
            run.copied += 1
        except s3.exceptions.ClientError:
            run.gone.append(entry["key"])


def check_backup_holds_objects(run: BackupRun) -> Check:
    """A backup alone fills an empty bucket: its archive holds the objects it lists."""
    check = Check(
        "the backup archive holds the stored objects (an empty bucket can be refilled "
        "from it alone)",
        True,
    )
    if run.path is None:
        check.fail("no backup archive")
        return check
    manifest = _manifest(run.path)
    with tarfile.open(run.path, "r:gz") as tar:
        archived = {name.removeprefix("storage/") for name in tar.getnames()}
    absent = [e["key"] for e in manifest["objects"] if e["key"] not in archived]
    check.figures |= {
        "objects_listed": len(manifest["objects"]),
        "objects_archived": len(manifest["objects"]) - len(absent),
        "manifest_objects_archived": manifest["objects_archived"],
        "storage_backend": manifest["storage_backend"],
    }
    for key in absent[:EVIDENCE_CAP]:
        check.fail({"what": "listed in the manifest, not in the archive", "key": key})
    return check


def _table_counts(cluster: Cluster, tables: list[str]) -> dict[str, int]:
    counts = {}
    for table in tables:
        counts[table] = int(cluster.psql(RESTORE_DB, f'SELECT count(*) FROM "{table}"').strip())
    return counts


def restore_drill(cluster: Cluster, run: BackupRun) -> Check:
    check = Check(
        "backup under load restores into an empty database and bucket, equal to its manifest", True
    )
    check.figures |= {
        "backup_start_s": round(run.start, 1),
        "backup_end_s": round(run.end, 1),
        "backup_returncode": run.returncode,
    }
    if run.returncode != 0 or run.path is None:
        check.fail({"what": "worldbase backup failed", "output": run.output})
        return check
    manifest = _manifest(run.path)
    objects = manifest["objects"]
    check.figures |= {
        "archive_bytes": run.path.stat().st_size,
        "tables": len(manifest["row_counts"]),
        "rows": sum(manifest["row_counts"].values()),
        "objects": len(objects),
        "objects_archived": manifest["objects_archived"],
    }
    cluster.psql("postgres", f"DROP DATABASE IF EXISTS {RESTORE_DB}")
    cluster.psql("postgres", f"CREATE DATABASE {RESTORE_DB}")
    # Objects the archive lists but does not hold were copied right after the backup
    # (replicate_objects). One gone by then (a staged upload its job consumed) is a loss
    # only if a restored row names it: the rows-vs-objects comparison below says so.
    check.figures |= {"objects_copied_after_backup": run.copied, "objects_gone": run.gone[:20]}
    result = cluster.worldbase(
        "restore",
        str(run.path),
        DATABASE_URL=cluster.database_url(RESTORE_DB),
        STORAGE_BUCKET=RESTORE_BUCKET,
    )
    check.figures["restore_output"] = (result.stdout + result.stderr)[-1500:]
    if result.returncode != 0:
        check.fail({"what": "worldbase restore failed", "returncode": result.returncode})
        return check
    counts = _table_counts(cluster, sorted(manifest["row_counts"]))
    for table, expected in manifest["row_counts"].items():
        if counts.get(table) != expected:
            check.fail(
                {
                    "what": "row count",
                    "table": table,
                    "manifest": expected,
                    "restored": counts.get(table),
                }
            )
    restored = bucket_keys(cluster, RESTORE_BUCKET)
    for entry in objects:
        if entry["key"] in run.gone:
            continue
        got = restored.get(entry["key"])
        if got is None:
            check.fail({"what": "object missing after restore", "key": entry["key"]})
        elif got["size"] != entry["size"] or str(entry.get("etag")).strip('"') != got["etag"]:
            check.fail(
                {
                    "what": "object checksum differs from the manifest",
                    "key": entry["key"],
                    "manifest": [entry["size"], entry.get("etag")],
                    "restored": [got["size"], got["etag"]],
                }
            )
    # Every row of the snapshot finds its object. Objects written between the database
    # snapshot and the bucket listing have no row in it: counted, not a loss.
    consistency = check_rows_vs_objects(cluster, RESTORE_DB, RESTORE_BUCKET)
    check.figures["restored_rows_vs_objects"] = consistency.figures
    for item in consistency.evidence:
        if item.get("what") == "row names a missing object":
            check.fail({"restored": item})
    check.figures["restored_objects_without_row"] = consistency.figures["orphans"]
    return check
