"""Job handlers of the samsyn app: imports too large to run during the request."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any

from worldbase.apps.samsyn.service_import import import_file
from worldbase.core import users
from worldbase.core.errors import NotFound
from worldbase.core.job_worker import JobContext, job_handler

IMPORT_KIND = "samsyn.import"


@job_handler(IMPORT_KIND)
async def import_layer(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """params: storage `key` of the upload, `filename`, layer `values`, `user_id`."""
    await ctx.progress(0.05, "reading the upload")
    data = await ctx.storage.get(params["key"])
    with tempfile.TemporaryDirectory(prefix="samsyn-import-") as tmp:
        path = Path(tmp) / "upload"
        path.write_bytes(data)
        async with ctx.db.sessionmaker() as session:
            user = await users.get(session, user_id=uuid.UUID(params["user_id"]))
            if user is None:
                raise NotFound("The importing user no longer exists")
            await ctx.progress(0.2, "importing features")
            layer = await import_file(
                session, user=user, path=path, filename=params["filename"], values=params["values"]
            )
            count = int(layer.source_config.get("featureCount") or 0)
    await ctx.storage.delete(params["key"])
    return {"layer_id": str(layer.id), "feature_count": count}
