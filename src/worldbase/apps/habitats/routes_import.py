"""Routes: admin uploads of habitat CSVs and species files (all or nothing per file)."""

from __future__ import annotations

import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, UploadFile, status

from worldbase.apps.habitats import imports, imports_species, tile_state
from worldbase.apps.habitats.schemas import ImportRead
from worldbase.core.auth import AdminUser
from worldbase.core.db import Session
from worldbase.core.errors import BadInput, PayloadTooLarge
from worldbase.core.http import body_limit
from worldbase.core.services import CacheDep

router = APIRouter()
CHUNK = 1024 * 1024
# Uploads are imported during the request; bigger files go through `worldbase import`.
MAX_UPLOAD_BYTES = 64 * 1024 * 1024
BODY_LIMIT = MAX_UPLOAD_BYTES + 64 * 1024  # + multipart framing


async def _save(upload: UploadFile, path: Path) -> None:
    size = 0
    with path.open("wb") as out:
        while chunk := await upload.read(CHUNK):
            size += len(chunk)
            if size > MAX_UPLOAD_BYTES:
                raise PayloadTooLarge(
                    f"Uploads take at most {MAX_UPLOAD_BYTES} bytes; use `worldbase import`",
                    detail={"limit": MAX_UPLOAD_BYTES},
                )
            out.write(chunk)
    if size == 0:
        raise BadInput("The uploaded file is empty")


async def _import_upload(
    upload: UploadFile,
    *,
    default_name: str,
    run: Callable[[Path, str], Awaitable[imports.ImportReport]],
) -> dict[str, Any]:
    """The upload saved to a temporary file (size-checked) and imported from there by `run`
    with its file name."""
    filename = (upload.filename or default_name)[:255]
    with tempfile.TemporaryDirectory(prefix="habitats-upload-") as tmp:
        path = Path(tmp) / "upload"
        await _save(upload, path)
        report = await run(path, filename)
    return report.as_dict()


_ERRORS = (
    "A bad file answers 422 (409 when a code or name exists already) with every bad row in "
    "`detail.errors` (`at`: `line 12` or `feature 7`); nothing is written then."
)


@router.post(
    "/habitats/import",
    response_model=ImportRead,
    status_code=status.HTTP_201_CREATED,
    summary="Import habitats from a CSV file (admin; all or nothing)",
    description="Columns: `name`, `iucn_code` (required), `description`, `ecosystem_type`, "
    "`color_hex`, `raster_value`, `geometry` (WKT or GeoJSON). " + _ERRORS,
)
@body_limit(BODY_LIMIT)
async def import_habitats(
    session: Session,
    cache: CacheDep,
    _: AdminUser,
    file: Annotated[
        UploadFile,
        File(
            description="habitats.csv",
            examples=[
                "name,iucn_code,ecosystem_type,color_hex\nTemperate Forest,1.4,forest,#2E7D32"
            ],
        ),
    ],
) -> dict[str, Any]:
    report = await _import_upload(
        file,
        default_name="upload.csv",
        run=lambda path, name: imports.import_habitats(session, path=path, filename=name),
    )
    await tile_state.forget(cache)
    return report


@router.post(
    "/species/import",
    response_model=ImportRead,
    status_code=status.HTTP_201_CREATED,
    summary="Import species with ranges from CSV, GeoJSON, GeoPackage or zipped Shapefile "
    "(admin; all or nothing)",
    description="CSV columns: `name` (required), `scientific_name`, `habitat_types` (`;`-"
    "separated), `geometry` (WKT or GeoJSON); rows with one name make one species. Vector "
    "files: one feature per range or sighting, named by `name`/`species` and "
    "`scientific_name`/`sci_name`/`binomial`. " + _ERRORS,
)
@body_limit(BODY_LIMIT)
async def import_species(
    session: Session,
    _: AdminUser,
    file: Annotated[
        UploadFile,
        File(
            description="species file",
            examples=[
                "name,scientific_name,habitat_types,geometry\nLion,Panthera leo,2.1,POINT (35 -2)"
            ],
        ),
    ],
) -> dict[str, Any]:
    return await _import_upload(
        file,
        default_name="upload",
        run=lambda path, name: imports_species.import_species(session, path=path, filename=name),
    )
