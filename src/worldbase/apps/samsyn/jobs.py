"""Job handlers of the samsyn app: imports too large to run during the request, and the
conversion of uploaded GeoTIFFs to COGs."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

from worldbase.apps.samsyn.imports.service import import_file
from worldbase.apps.samsyn.uploads import service as service_upload
from worldbase.core import users
from worldbase.core.cleanup import work_dir
from worldbase.core.errors import DomainError, NotFound
from worldbase.core.job_worker import JobCancelled, JobContext

IMPORT_KIND = "samsyn.import"
IMPORT_PREFIX = "samsyn/imports"
COG_KIND = "samsyn.cog"
# Uploads waiting for their job: a job owns its keys (`staging_keys`); the rest are swept.
STAGING_PREFIXES = (f"{IMPORT_PREFIX}/", f"{service_upload.UPLOAD_PREFIX}/")
HEAVY_KINDS = (IMPORT_KIND, COG_KIND)  # each counts against its owner's concurrent limit


async def import_layer(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """params: storage `key` of the upload, `filename`, layer `values`, `user_id`."""
    await ctx.progress(0.05, "reading the upload")
    data = await ctx.storage.get(params["key"])
    with work_dir("samsyn-import") as tmp:
        path = tmp / "upload"
        path.write_bytes(data)
        async with ctx.db.sessionmaker() as session:
            user = await users.get(session, user_id=uuid.UUID(params["user_id"]))
            if user is None:
                raise NotFound("The importing user no longer exists")
            await ctx.progress(0.2, "importing features")
            layer = await import_file(
                session,
                user=user,
                path=path,
                filename=params["filename"],
                values=params["values"],
                max_feature_vertices=ctx.settings.worldbase_max_feature_vertices,
            )
            count = int(layer.source_config.get("featureCount") or 0)
    await _forget(ctx, params["key"])  # (core also drops a failed or cancelled job's upload)
    return {"layer_id": str(layer.id), "feature_count": count}


# Job progress: the download is the first 10 %, the conversion up to 80 %, then storing.
_CONVERT_FROM, _CONVERT_TO = 0.1, 0.8


async def convert_upload(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """params: `upload_key` (the GeoTIFF in storage), `summary`, `bounds`, layer `values`,
    `overview_resampling`, `user_id`. Converts to a COG, stores it and creates the layer.

    A failure removes the COG; a final one (bad input, cancelled) the upload too, while
    other errors keep it for the retry."""
    key = service_upload.cog_key()
    try:
        size = await _convert(ctx, params, key)
        async with ctx.db.sessionmaker() as session:
            user = await users.get(session, user_id=uuid.UUID(params["user_id"]))
            if user is None:
                raise NotFound("The uploading user no longer exists")
            await ctx.progress(0.95, "creating the layer")
            layer = await service_upload.create_layer(
                session,
                user=user,
                key=key,
                summary=params["summary"] | {"filename": params.get("filename")},
                bounds=params["bounds"],
                values=params["values"],
            )
    except (DomainError, JobCancelled):
        await _forget(ctx, key, params["upload_key"])
        raise
    except BaseException:
        await _forget(ctx, key)
        raise
    await _forget(ctx, params["upload_key"])
    return {"layer_id": str(layer.id), "cog_url": f"storage://{key}", "cog_bytes": size}


async def _forget(ctx: JobContext, *keys: str) -> None:
    for key in keys:
        with contextlib.suppress(NotFound):
            await ctx.storage.delete(key)


async def _convert(ctx: JobContext, params: dict[str, Any], key: str) -> int:
    """The COG of the upload, stored under `key`; its size. Progress 0.02 to 0.85."""
    await ctx.progress(0.02, "reading the upload")
    with work_dir("samsyn-cog") as tmp:
        source, target = tmp / "upload.tif", tmp / "cog.tif"
        await service_upload.fetch(ctx.storage, params["upload_key"], source)
        await ctx.progress(_CONVERT_FROM, "converting to a cloud-optimized GeoTIFF")
        done = [0.0]  # written by the conversion thread, read here
        conversion = asyncio.ensure_future(
            asyncio.to_thread(
                service_upload.convert_sync,
                source,
                target,
                dtype=str(params["summary"]["dtype"]),
                overview_resampling=str(params.get("overview_resampling") or "nearest"),
                report=lambda fraction: done.__setitem__(0, fraction),
            )
        )
        reported = 0.0
        while not conversion.done():
            await asyncio.wait({conversion}, timeout=0.5)
            if done[0] - reported >= 0.05:
                reported = done[0]
                fraction = _CONVERT_FROM + (_CONVERT_TO - _CONVERT_FROM) * reported
                await ctx.progress(fraction, f"converting: {round(reported * 100)} %")
        await conversion
        size = target.stat().st_size
        await ctx.progress(_CONVERT_TO + 0.05, "storing the COG")
        await service_upload.store(ctx.storage, target, key)
    return size


HANDLERS = {IMPORT_KIND: import_layer, COG_KIND: convert_upload}
