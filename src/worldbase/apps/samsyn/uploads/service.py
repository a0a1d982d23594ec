"""GeoTIFF uploads: sniffed and validated during the request, converted to a COG by a job.

The request (`routes_upload`) only accepts what it can vouch for: a TIFF by its magic bytes
(415 otherwise), that rasterio opens, georeferenced, whose first and last blocks decode
(a truncated or corrupt file is 422), within `WORLDBASE_UPLOAD_MAX_BYTES`,
`WORLDBASE_UPLOAD_MAX_PIXELS` and `WORLDBASE_UPLOAD_MAX_DECOMPRESSED_BYTES` (413), and while
the user has fewer than `WORLDBASE_MAX_HEAVY_JOBS_PER_USER` heavy jobs queued or running
(429). Nothing is stored before that. The upload then goes to storage and a `samsyn.cog`
job converts it
(rio-cogeo: DEFLATE with a predictor, 512 px blocks, internal overviews, the file's own
projection kept — rio-tiler reprojects per tile, so the data are resampled once, not
twice) and creates the GeoTIFF layer, `cogUrl: storage://samsyn/cogs/<id>.tif`, with its
bounds in degrees. The job reports progress through the conversion; a failure removes
what it stored.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.datastructures import UploadFile

from worldbase.apps.samsyn.layers import service as service_layers
from worldbase.apps.samsyn.layers.source_config import validate_source_config
from worldbase.apps.samsyn.models import Layer, SourceType
from worldbase.core.errors import BadInput, PayloadTooLarge
from worldbase.core.models import User
from worldbase.core.storage import Storage

STORAGE_SCHEME = "storage://"
UPLOAD_PREFIX = "samsyn/uploads"
COG_PREFIX = "samsyn/cogs"
CHUNK = 1024 * 1024
MAX_BODY_BYTES = 4 * 1024**3  # the route's body cap; WORLDBASE_UPLOAD_MAX_BYTES is below it
TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # TIFF and BigTIFF, LE/BE
RESAMPLING = ("nearest", "average", "bilinear", "cubic", "mode")


class UnsupportedMediaType(BadInput):
    """The upload is not a TIFF at all (judged by its content, never its name)."""

    status_code = 415


@dataclass(frozen=True)
class RasterSummary:
    width: int
    height: int
    count: int
    dtype: str
    crs: str
    bounds: list[list[float]]  # [[minLon, minLat], [maxLon, maxLat]]
    tiled: bool
    nodata: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "width": self.width,
            "height": self.height,
            "count": self.count,
            "dtype": self.dtype,
            "crs": self.crs,
            "tiled": self.tiled,
            "nodata": self.nodata,
        }


async def save_upload(
    file: UploadFile, path: Path, *, max_bytes: int, what: str = "GeoTIFF uploads"
) -> int:
    """Write the uploaded file to `path`; 413 past `max_bytes` ("`what` take at most ..."),
    422 when empty."""
    size = 0
    with path.open("wb") as out:
        while chunk := await file.read(CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise PayloadTooLarge(
                    f"{what} take at most {max_bytes} bytes", detail={"limit": max_bytes}
                )
            out.write(chunk)
    if size == 0:
        raise BadInput("The uploaded file is empty")
    return size


def sniff(path: Path) -> None:
    """415 unless the file starts like a TIFF."""
    with path.open("rb") as f:
        head = f.read(4)
    if head not in TIFF_MAGIC:
        raise UnsupportedMediaType(
            "The upload is not a GeoTIFF (a TIFF file is expected)",
            detail={"expected": "image/tiff"},
        )


@dataclass(frozen=True)
class UploadLimits:
    """What one upload may cost its conversion, judged from the file's header."""

    max_pixels: int  # width x height x bands
    max_decompressed_bytes: int  # those pixels at their data type's size


def _check_size(src: Any, limits: UploadLimits) -> None:
    # A few KB of sparse or well-compressed TIFF can claim 60000 x 60000 pixels: the
    # header says what the conversion would cost, before it is stored or queued.
    import numpy as np

    pixels = src.width * src.height * src.count
    decompressed = sum(src.width * src.height * np.dtype(d).itemsize for d in src.dtypes)
    shape = {"width": src.width, "height": src.height, "bands": src.count}
    if pixels > limits.max_pixels:
        raise PayloadTooLarge(
            f"The GeoTIFF has {pixels} pixels (width x height x bands); uploads take at most "
            f"{limits.max_pixels} (WORLDBASE_UPLOAD_MAX_PIXELS)",
            detail={"limit": limits.max_pixels, "pixels": pixels, **shape},
        )
    if decompressed > limits.max_decompressed_bytes:
        raise PayloadTooLarge(
            f"The GeoTIFF decompresses to {decompressed} bytes; uploads take at most "
            f"{limits.max_decompressed_bytes} (WORLDBASE_UPLOAD_MAX_DECOMPRESSED_BYTES)",
            detail={
                "limit": limits.max_decompressed_bytes,
                "decompressed_bytes": decompressed,
                **shape,
            },
        )


def _describe_sync(path: Path, limits: UploadLimits) -> RasterSummary:
    import rasterio
    from rasterio.errors import RasterioError
    from rasterio.warp import transform_bounds
    from rasterio.windows import Window

    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise BadInput("The GeoTIFF has no coordinate reference system (not georeferenced)")
            _check_size(src, limits)
            # Decoding the first and the last block finds truncated and corrupt files.
            block_h, block_w = src.block_shapes[0]
            for row, col in ((0, 0), (src.height - 1, src.width - 1)):
                top, left = row - row % block_h, col - col % block_w
                window = Window(
                    left, top, min(block_w, src.width - left), min(block_h, src.height - top)
                )
                src.read(1, window=window)
            west, south, east, north = transform_bounds(
                src.crs, "EPSG:4326", *src.bounds, densify_pts=21
            )
            summary = RasterSummary(
                width=src.width,
                height=src.height,
                count=src.count,
                dtype=src.dtypes[0],
                crs=src.crs.to_string(),
                bounds=[
                    [max(west, -180.0), max(south, -90.0)],
                    [min(east, 180.0), min(north, 90.0)],
                ],
                tiled=bool(src.profile.get("tiled")),
                nodata=src.nodata,
            )
    except RasterioError as exc:
        raise BadInput(f"The GeoTIFF cannot be read: {_reason(exc)}") from None
    if not (
        summary.bounds[0][0] < summary.bounds[1][0] and summary.bounds[0][1] < summary.bounds[1][1]
    ):
        raise BadInput("The GeoTIFF's extent cannot be placed on the globe")
    return summary


def _reason(exc: Exception) -> str:
    # GDAL messages name the temporary path: keep the reason, not our file system.
    text = re.sub(r"/\S+", "<file>", str(exc)) or type(exc).__name__
    return text[:300]


async def describe(path: Path, *, limits: UploadLimits) -> RasterSummary:
    """What the GeoTIFF is (422 when rasterio cannot read it, 413 past `limits`); blocking
    work in a thread."""
    return await asyncio.to_thread(_describe_sync, path, limits)


def upload_key() -> str:
    return f"{UPLOAD_PREFIX}/{uuid.uuid4()}.tif"


async def store(storage: Storage, path: Path, key: str) -> None:
    """The file at `path` into storage under `key`, streamed."""

    async def chunks() -> AsyncIterator[bytes]:
        with path.open("rb") as f:
            while data := await asyncio.to_thread(f.read, CHUNK):
                yield data

    await storage.put(key, chunks(), content_type="image/tiff")


async def fetch(storage: Storage, key: str, path: Path) -> None:
    with path.open("wb") as out:
        async for chunk in storage.stream(key):
            await asyncio.to_thread(out.write, chunk)


# --- Conversion ------------------------------------------------------------------------------


class _ProgressOut:
    """A text stream for rio-cogeo's progress bar: reports its percentage to `report`."""

    def __init__(self, report: Callable[[float], None]):
        self._report = report
        self._last = -1

    def isatty(self) -> bool:  # click only draws the bar on a terminal
        return True

    def write(self, text: str) -> int:
        found = re.findall(r"(\d{1,3})%", text)
        if found:
            percent = int(found[-1])
            if percent != self._last:
                self._last = percent
                self._report(percent / 100)
        return len(text)

    def flush(self) -> None:
        pass


def _predictor(dtype: str) -> int:
    return 3 if dtype.startswith("float") else 2


def convert_sync(
    source: Path,
    target: Path,
    *,
    dtype: str,
    overview_resampling: str = "nearest",
    report: Callable[[float], None] | None = None,
) -> None:
    """`source` as a COG at `target` (blocking)."""
    from rasterio.errors import RasterioError
    from rio_cogeo.cogeo import cog_translate, cog_validate
    from rio_cogeo.profiles import cog_profiles

    profile = dict(cog_profiles.get("deflate"))
    profile.update(predictor=_predictor(dtype), BIGTIFF="IF_SAFER")
    progress = _ProgressOut(report) if report is not None else None
    try:
        cog_translate(
            str(source),
            str(target),
            profile,
            overview_resampling=overview_resampling,  # type: ignore[arg-type]
            web_optimized=False,
            in_memory=False,
            quiet=progress is None,
            progress_out=progress,  # type: ignore[arg-type]
            config={"GDAL_NUM_THREADS": "ALL_CPUS", "GDAL_TIFF_OVR_BLOCKSIZE": "512"},
        )
    except RasterioError as exc:  # the file itself: retrying cannot help
        raise BadInput(f"The GeoTIFF could not be converted: {_reason(exc)}") from None
    valid, errors, _ = cog_validate(str(target), quiet=True)
    if not valid:
        raise RuntimeError(f"rio-cogeo produced an invalid COG: {errors}")


def check_values(values: dict[str, Any]) -> None:
    """422 now, not in the job, for a `source_config` the layer could not be created with."""
    sample = (values.get("source_config") or {}) | {
        "delivery": "tiles",
        "cogUrl": f"{STORAGE_SCHEME}{COG_PREFIX}/check.tif",
    }
    validate_source_config(SourceType.geotiff, sample)


def cog_key() -> str:
    return f"{COG_PREFIX}/{uuid.uuid4()}.tif"


async def create_layer(
    session: Any,
    *,
    user: User,
    key: str,
    summary: dict[str, Any],
    bounds: list[list[float]],
    values: dict[str, Any],
) -> Layer:
    """The GeoTIFF layer over the stored COG."""
    values = dict(values)
    extra = values.pop("source_config", None) or {}
    config = extra | {
        "delivery": "tiles",
        "cogUrl": f"{STORAGE_SCHEME}{key}",
        "bounds": bounds,
        "upload": summary,
    }
    return await service_layers.create(
        session, user=user, values=values | {"source_type": "geotiff", "source_config": config}
    )
