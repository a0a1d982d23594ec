"""Job kinds of the osm app (registered on import): file imports and polling sources.

`osm.import_file` params: `storage_key` (the uploaded file in object storage), `filename`
(its original name: the suffix tells the format), `source_id`, optional `create` (first
load: fail unless the objects table is empty).
`osm.poll_source` params: `source_id` (a replication or overpass source).
`osm.schedule_polls` runs every minute in the job consumers and enqueues the due polls.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any

from worldbase.apps.osm import polling
from worldbase.apps.osm.events import publish_changes_threadsafe
from worldbase.apps.osm.files import file_suffix, import_file
from worldbase.apps.osm.ingest import IngestReport
from worldbase.core.job_worker import JobContext, JobScheduler
from worldbase.core.source_policy import SourcePolicy

IMPORT_KIND = "osm.import_file"
HEAVY_KINDS = (IMPORT_KIND,)  # counts against its owner's concurrent limit


async def import_file_job(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    filename = str(params["filename"])
    data = await ctx.storage.get(str(params["storage_key"]))

    def publish(report: IngestReport) -> None:
        publish_changes_threadsafe(ctx.publish, report)

    with tempfile.TemporaryDirectory(prefix="wb-osm-") as tmp:
        path = Path(tmp) / f"upload{file_suffix(filename)}"
        path.write_bytes(data)
        report = await import_file(
            ctx.db,
            path,
            source_id=params.get("source_id"),
            name=filename,
            progress=ctx.progress,
            publish=publish,
            create=bool(params.get("create", False)),
        )
    # The upload is only kept until its import finished.
    with contextlib.suppress(Exception):
        await ctx.storage.delete(str(params["storage_key"]))
    return report.summary()


async def poll_source_job(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    def publish(report: IngestReport) -> None:
        publish_changes_threadsafe(ctx.publish, report)

    return await polling.poll(
        ctx.db,
        source_id=str(params["source_id"]),
        progress=ctx.progress,
        publish=publish,
        policy=SourcePolicy.from_settings(ctx.settings),
    )


async def schedule_polls(scheduler: JobScheduler) -> None:
    if "osm" in scheduler.settings.worldbase_apps:
        await polling.schedule_due(scheduler.db, enqueue=scheduler.enqueue)


HANDLERS = {IMPORT_KIND: import_file_job, polling.POLL_KIND: poll_source_job}
SCHEDULES = {"osm.schedule_polls": schedule_polls}
