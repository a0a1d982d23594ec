"""GeoPackage and zipped Shapefile readers (GDAL through pyogrio); `vector_io.read_features`
picks them by content."""

from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import shapely

from worldbase.core.errors import BadInput
from worldbase.geo.vector_features import (
    MAX_IMPORT_BYTES,
    FeatureCap,
    ImportedFeature,
    bad_input,
    reproject,
    transformer_to_wgs84,
    validated,
)

# Zip bombs: the unpacked total, the member count and the compression ratio are bounded.
MAX_UNZIPPED_BYTES = 4 * MAX_IMPORT_BYTES
MAX_ZIP_MEMBERS = 200
MAX_ZIP_RATIO = 200
_SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")


def read_ogr(
    path: Path, filename: str, cap: FeatureCap, *, suffix: str, what: str
) -> Iterator[ImportedFeature]:
    import pyogrio
    from pyogrio.raw import read

    # GDAL wants the conventional extension; a symlink gives it one without copying.
    workdir = Path(tempfile.mkdtemp(prefix="wb-import-"))
    try:
        if path.suffix.lower() == suffix:
            source = path
        else:
            source = workdir / f"upload{suffix}"
            os.symlink(path.resolve(), source)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            try:
                layers = [row for row in pyogrio.list_layers(source) if row[1] is not None]
                if not layers:
                    raise bad_input(
                        f"{filename}: the {what} has no layer with geometries", "no layer"
                    )
                if len(layers) > 1:
                    names = ", ".join(str(row[0]) for row in layers)
                    raise bad_input(
                        f"{filename}: the {what} has {len(layers)} layers ({names}); "
                        "upload one layer per file",
                        "several layers",
                    )
                meta, _fids, wkbs, fields = read(
                    source, layer=str(layers[0][0]), force_2d=True, datetime_as_string=True
                )
            except BadInput:
                raise
            except Exception as exc:  # GDAL's errors (DataSourceError, ...) on a broken file
                raise bad_input(
                    f"{filename}: could not read the {what}: {exc}", "unreadable"
                ) from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    transformer = transformer_to_wgs84(meta.get("crs"), filename)
    geoms = reproject(shapely.from_wkb(wkbs), transformer)
    field_names = [str(n) for n in meta["fields"]]
    integer = [str(t).startswith("OFTInteger") for t in meta.get("ogr_types", [])]
    return _ogr_features(geoms, fields, field_names, integer, filename, cap)


def _ogr_features(
    geoms: np.ndarray,
    fields: Sequence[np.ndarray],
    names: list[str],
    integer: list[bool],
    filename: str,
    cap: FeatureCap,
) -> Iterator[ImportedFeature]:
    for i, geom in enumerate(geoms):
        geometry = validated(geom, f"feature {i}", filename, cap, index=i)
        properties = {
            name: _field_value(column[i], integer[j] if j < len(integer) else False)
            for j, (name, column) in enumerate(zip(names, fields, strict=True))
        }
        yield ImportedFeature(i, geometry, properties)


def _field_value(value: Any, integer: bool) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        # Integer fields with NULLs come back as floats.
        return int(value) if integer else value
    if isinstance(value, bytes):
        return value.hex()
    return value


def _safe_member(name: str) -> PurePosixPath | None:
    """The member's path, or None for directories and macOS metadata; rejects traversal."""
    normalised = name.replace("\\", "/")
    member = PurePosixPath(normalised)
    if normalised.startswith("/") or re.match(r"^[A-Za-z]:", normalised) or ".." in member.parts:
        raise bad_input(f"unsafe path in the ZIP archive: {name!r}", "unsafe zip path", member=name)
    if normalised.endswith("/") or "__MACOSX" in member.parts or member.name.startswith("."):
        return None
    return member


def read_zipped_shapefile(path: Path, filename: str, cap: FeatureCap) -> Iterator[ImportedFeature]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise bad_input(f"{filename} is not a readable ZIP archive: {exc}", "bad zip") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_ZIP_MEMBERS:
            raise bad_input(
                f"{filename}: more than {MAX_ZIP_MEMBERS} files in the archive", "zip bomb"
            )
        members: dict[PurePosixPath, zipfile.ZipInfo] = {}
        for info in infos:
            member = _safe_member(info.filename)
            if member is not None:
                members[member] = info
        shapefiles = [m for m in members if m.suffix.lower() == ".shp"]
        if len(shapefiles) != 1:
            found = ", ".join(str(m) for m in shapefiles) or "none"
            raise bad_input(
                f"{filename}: a ZIP upload must hold exactly one Shapefile (.shp); found {found}",
                "shapefile count",
            )
        stem = shapefiles[0].with_suffix("")
        parts = {
            m.suffix.lower(): info
            for m, info in members.items()
            if m.with_suffix("") == stem and m.suffix.lower() in _SHAPEFILE_PARTS
        }
        missing = [s for s in (".shp", ".shx", ".dbf") if s not in parts]
        if missing:
            raise bad_input(
                f"{filename}: the Shapefile {stem.name} lacks {', '.join(missing)}",
                "incomplete shapefile",
            )
        total = sum(info.file_size for info in parts.values())
        if total > MAX_UNZIPPED_BYTES:
            raise bad_input(f"{filename}: the Shapefile unpacks to more than allowed", "zip bomb")
        workdir = Path(tempfile.mkdtemp(prefix="wb-shp-"))
        try:
            budget = MAX_UNZIPPED_BYTES
            for suffix, info in parts.items():
                # Written under a fixed name: the member's own path never reaches the disk.
                budget = _extract(archive, info, workdir / f"upload{suffix}", budget, filename)
            # _read_ogr reads everything before it returns: the files can go afterwards.
            return read_ogr(workdir / "upload.shp", filename, cap, suffix=".shp", what="Shapefile")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


def _extract(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: int, filename: str
) -> int:
    """Copy one member, counting the bytes actually inflated (headers can lie)."""
    limit = min(budget, max(info.compress_size, 1) * MAX_ZIP_RATIO + 1024 * 1024)
    written = 0
    try:
        with archive.open(info) as source, target.open("wb") as sink:
            while chunk := source.read(1024 * 1024):
                written += len(chunk)
                if written > limit:
                    raise bad_input(f"{filename}: {info.filename} unpacks too far", "zip bomb")
                sink.write(chunk)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise bad_input(f"{filename}: could not unpack {info.filename}: {exc}", "bad zip") from None
    return budget - written


# --- CSV -------------------------------------------------------------------------------------
