"""Rows and objects: every storage key a row names exists in the bucket, and every object
under an app's own prefixes is named by a row."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from tests.cluster.checks import Check
from tests.cluster.processes import Cluster

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
