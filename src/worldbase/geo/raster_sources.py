"""Raster sources: what may be read (the source policy), what rasterio opens, GDAL's environment.

A source names a raster in one of four ways:

- `http(s)://host/path.tif` — read with HTTP range requests, never by GDAL directly: GDAL
  reads through `geo.raster_relay`, which makes each request (every redirect hop and range
  read) under `core.source_policy` (public addresses by default, the allow-list, the address
  checked at connect);
- `s3://bucket/key.tif` — read through GDAL's /vsis3/ at the configured endpoint
  (`AWS_ENDPOINT_URL` or AWS) with the storage credentials; Worldbase's own storage bucket
  is not a source (its objects are reachable only through the app that owns them);
- `storage://<key>` — an object in Worldbase's own storage: only for an app reading its own
  objects (`own_storage=<its key prefix>`: a layer's uploaded COG, the habitat raster),
  never a request's URL;
- a local path (`/srv/rasters/x.tif` or `file:///srv/rasters/x.tif`) — only under
  `WORLDBASE_RASTER_DIRS`, never the data directory, the database, /proc, /dev or /sys.
  Every local path outside them is refused with the same answer, whether it exists or not.

Whatever the source, rasterio opens it read-only with the GeoTIFF driver only (`DRIVER`):
no SQLite, GeoPackage, VRT or other driver ever touches a file, and no sidecar is written
or read (`GDAL_PAM_ENABLED=NO`).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import rasterio
from rasterio.session import AWSSession

from worldbase.core.errors import BadInput
from worldbase.core.source_policy import SourceNotAllowed, SourcePolicy
from worldbase.core.storage import validate_key
from worldbase.geo.raster_relay import relay_path
from worldbase.settings import Settings

__all__ = ["DRIVER", "STORAGE_SCHEME", "SourceNotAllowed"]

STORAGE_SCHEME = "storage://"
MAX_SOURCE_LENGTH = 2048
# The only GDAL driver a raster source is opened with (COGs are GeoTIFFs).
DRIVER = "GTiff"
_LOCAL_REFUSAL = "local files are readable only under WORLDBASE_RASTER_DIRS"


def _reject(url: str, reason: str) -> SourceNotAllowed:
    return SourceNotAllowed(
        f"Raster source not allowed: {reason}",
        detail={
            "source": url[:200],
            "reason": reason,
            "settings": [
                "WORLDBASE_SOURCE_POLICY",
                "WORLDBASE_SOURCE_ALLOWLIST",
                "WORLDBASE_RASTER_DIRS",
            ],
        },
    )


def _check_shape(url: str) -> None:
    if not isinstance(url, str) or not url or len(url) > MAX_SOURCE_LENGTH:
        raise BadInput("A raster source must be a URL or path of at most 2048 characters")
    if any(ch in url for ch in "\x00\r\n\t\\") or url != url.strip():
        raise BadInput("The raster source contains forbidden characters")


def _local_path(url: str) -> Path | None:
    if url.startswith("file://"):
        return Path(unquote(urlsplit(url).path))
    if url.startswith("/"):
        return Path(url)
    return None


@functools.lru_cache(maxsize=64)
def _policy(mode: Any, entries: tuple[str, ...]) -> SourcePolicy:
    return SourcePolicy.from_entries(entries, mode=mode)


def policy(settings: Settings) -> SourcePolicy:
    """The source policy of `settings` (one object per configuration)."""
    return _policy(settings.worldbase_source_policy, tuple(settings.worldbase_source_allowlist))


def _local_allowed(path: Path, settings: Settings) -> Path | None:
    """The resolved path when it lies in a raster folder and nowhere protected."""
    resolved = path.resolve()
    text = str(resolved)
    if text.startswith("/vsi") or "/vsi" in str(path):
        return None  # a GDAL virtual file system, not a file
    if any(resolved.is_relative_to(p) for p in settings.protected_paths):
        return None
    if any(resolved.is_relative_to(folder) for folder in settings.raster_dirs):
        return resolved
    return None


def _own_bucket(url: str, settings: Settings) -> bool:
    if not settings.uses_s3 or not settings.storage_bucket:
        return False
    bucket = urlsplit(url).netloc
    return bucket == settings.storage_bucket


def check_source_allowed(url: str, settings: Settings, *, own_storage: str | None = None) -> None:
    """Raise `SourceNotAllowed` (403) unless the source may be read; `BadInput` if malformed.

    `own_storage`: the caller is an app reading its own source (a layer's uploaded COG,
    the habitat raster), not a request's URL: `storage://` keys under this prefix are
    allowed then; without it `storage://` never is. The rasters the enabled apps publish
    (`settings.public_raster_urls`, e.g. the habitat raster), exactly as named, are always
    readable.
    """
    _check_shape(url)
    # Public by design (the game reads the habitat raster through /cog).
    configured = url in settings.public_raster_urls
    if url.startswith(STORAGE_SCHEME):
        key = validate_key(url[len(STORAGE_SCHEME) :])
        if configured or (own_storage and key.startswith(own_storage)):
            return
        raise _reject(url, "storage:// objects are readable only through the app that owns them")
    path = _local_path(url)
    if path is not None:
        if configured:
            return
        if _local_allowed(path, settings) is None:
            # One answer for every refused path, existing or not (no existence oracle).
            raise _reject("(local path)", _LOCAL_REFUSAL)
        return
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https", "s3"):
        raise BadInput(
            f"Unsupported raster source scheme {scheme or '(none)'!r}: "
            "use http(s)://, s3:// or a path under WORLDBASE_RASTER_DIRS",
            detail={"source": url[:200]},
        )
    if not parts.hostname or parts.username or parts.password:
        raise BadInput("A raster source URL needs a host and no credentials in it")
    segments = unquote(parts.path).split("/")
    if ".." in segments or "." in segments:
        raise BadInput("A raster source URL must not contain '.' or '..' segments")
    rules = policy(settings)
    if scheme == "s3":
        if _own_bucket(url, settings) and not configured:
            raise _reject(url, "Worldbase's own storage bucket is not a source")
        if rules.mode == "allowlist" and not rules.prefix_allows(url):
            raise _reject(url, "the URL matches no WORLDBASE_SOURCE_ALLOWLIST entry")
        return
    rules.check_url(url)


def allowlist(settings: Settings) -> list[str]:
    """The configured allow-list entries (URL prefixes and networks)."""
    return list(settings.worldbase_source_allowlist)


def storage_source(settings: Settings, key: str) -> str:
    """What rasterio opens for `storage://<key>` on the configured storage backend."""
    key = validate_key(key)
    prefix = settings.storage_prefix.strip("/")
    full = f"{prefix}/{key}" if prefix else key
    if settings.uses_s3:
        return f"/vsis3/{settings.storage_bucket}/{full}"
    return str(settings.local_storage_path / full)


def resolve_source(url: str, settings: Settings, *, own_storage: str | None = None) -> str:
    """Check the source, then return the path or URL it names (`gdal_path` makes it GDAL's)."""
    check_source_allowed(url, settings, own_storage=own_storage)
    if url.startswith(STORAGE_SCHEME):
        return storage_source(settings, url[len(STORAGE_SCHEME) :])
    path = _local_path(url)
    if path is not None:
        return str(path.resolve())
    if url.startswith("s3://"):
        return "/vsis3/" + url[len("s3://") :]
    return url


def gdal_path(source: str, settings: Settings) -> str:
    """What GDAL opens for a resolved source: http(s) through the policy relay."""
    if source.startswith(("http://", "https://")):
        return relay_path(source, policy(settings))
    return source


def open_dataset(path: str) -> Any:
    """rasterio's read-only dataset over a GDAL path, with the GeoTIFF driver only."""
    return rasterio.open(path, "r", driver=DRIVER)


def gdal_options(settings: Settings) -> dict[str, Any]:
    """GDAL configuration for cloud reads, in one place (also used by the /cog endpoints)."""
    options: dict[str, Any] = {
        # A COG holds everything in its header: never list the "directory" of a URL.
        "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
        "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.TIF,.tiff,.TIFF,.cog",
        "GDAL_CACHEMAX": 256,  # MB of decoded block cache
        "GDAL_HTTP_MULTIPLEX": "YES",
        "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
        # HTTP/2 where TLS negotiates it (s3 endpoints); GDAL's http reads go to the relay.
        "GDAL_HTTP_VERSION": "2TLS",
        "GDAL_HTTP_TIMEOUT": 20,
        "GDAL_HTTP_CONNECTTIMEOUT": 5,
        "GDAL_HTTP_MAX_RETRY": 2,
        "GDAL_HTTP_RETRY_DELAY": 0.5,
        "VSI_CACHE": "TRUE",
        "VSI_CACHE_SIZE": 50_000_000,
        "CPL_VSIL_CURL_CACHE_SIZE": 200_000_000,
        "GDAL_BAND_BLOCK_CACHE": "HASHSET",
        "PROJ_NETWORK": "OFF",
        # Never write (or read) .aux.xml sidecars next to a source.
        "GDAL_PAM_ENABLED": "NO",
        # Curl must not pick up an environment proxy for the loopback relay.
        "GDAL_HTTP_PROXY": "",
    }
    if settings.storage_endpoint_url:
        endpoint = urlsplit(settings.storage_endpoint_url)
        options["AWS_HTTPS"] = "YES" if endpoint.scheme == "https" else "NO"
        options["AWS_VIRTUAL_HOSTING"] = "FALSE"
    return options


@functools.lru_cache(maxsize=8)
def _aws_session(
    key_id: str | None, secret: str | None, region: str, endpoint: str | None
) -> AWSSession:
    return AWSSession(
        aws_unsigned=not (key_id and secret),
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        region_name=region,
        endpoint_url=endpoint,
    )


def aws_session(settings: Settings) -> AWSSession:
    """The credentials and endpoint for /vsis3/ (rasterio takes them only as a session)."""
    endpoint = None
    if settings.storage_endpoint_url:
        parts = urlsplit(settings.storage_endpoint_url)
        endpoint = parts.netloc + parts.path.rstrip("/")
    return _aws_session(
        settings.aws_access_key_id,
        settings.aws_secret_access_key,
        settings.storage_region,
        endpoint,
    )


@contextlib.contextmanager
def gdal_env(settings: Settings) -> Iterator[None]:
    """`rasterio.Env` with `gdal_options`; wrap every open and read (options are per thread)."""
    with rasterio.Env(session=aws_session(settings), **gdal_options(settings)):
        yield
