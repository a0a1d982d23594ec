"""Raster sources: the allow-list, what rasterio opens for a source, and GDAL's environment.

A source names a raster in one of four ways:

- `http(s)://host/path.tif` — read with HTTP range requests (GDAL's /vsicurl/);
- `s3://bucket/key.tif` — read through GDAL's /vsis3/ with the storage settings'
  credentials and endpoint (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_ENDPOINT_URL`);
- `storage://<key>` — an object in Worldbase's own storage (uploads converted to COG live
  there): a file under the local storage directory, or /vsis3/ on the s3 backend;
- a local path (`/srv/rasters/x.tif` or `file:///srv/rasters/x.tif`).

Every source passes `check_source_allowed` before anything opens it. An open raster proxy
is an SSRF hole, so only these are readable: Worldbase's own storage, the configured
`HABITAT_RASTER_URL`, files under the data directory, and URLs starting with one of the
`WORLDBASE_SOURCE_ALLOWLIST` prefixes (a prefix matches at a path boundary only, so
`https://data.example.org` does not admit `https://data.example.org.evil.com`). GDAL
follows HTTP redirects on its own, so an http(s) source is probed once without following
them (`check_redirects`), and every hop must be allowed too; GDAL is then pointed at the
final URL.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import httpx
import rasterio
from rasterio.session import AWSSession

from worldbase.core.errors import BadInput, Forbidden, UpstreamError, UpstreamTimeout
from worldbase.core.storage import validate_key
from worldbase.settings import Settings

STORAGE_SCHEME = "storage://"
MAX_REDIRECTS = 5
PROBE_TIMEOUT = 10.0
MAX_SOURCE_LENGTH = 2048


class SourceNotAllowed(Forbidden):
    """The source is outside the allow-list (403: the request is understood, and refused)."""


def _boundary_match(url: str, prefix: str) -> bool:
    if not url.startswith(prefix):
        return False
    if prefix.endswith(("/", "?", "=", "&")) or len(url) == len(prefix):
        return True
    return url[len(prefix)] in "/?#"


def allowlist(settings: Settings) -> list[str]:
    """The configured prefixes plus the always-allowed ones (storage, the habitat raster)."""
    prefixes = [STORAGE_SCHEME, *settings.worldbase_source_allowlist]
    if settings.habitat_raster_url:
        prefixes.append(settings.habitat_raster_url)
    return prefixes


def _reject(url: str, reason: str) -> SourceNotAllowed:
    return SourceNotAllowed(
        f"Raster source not allowed: {reason}",
        detail={"source": url[:200], "reason": reason, "setting": "WORLDBASE_SOURCE_ALLOWLIST"},
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


def check_source_allowed(url: str, settings: Settings) -> None:
    """Raise `SourceNotAllowed` (403) unless the source may be read; `BadInput` if malformed."""
    _check_shape(url)
    if url.startswith(STORAGE_SCHEME):
        validate_key(url[len(STORAGE_SCHEME) :])
        return
    path = _local_path(url)
    if path is not None:
        resolved = path.resolve()
        if resolved.is_relative_to(settings.data_dir.resolve()):
            return
        # The configured habitat raster is always readable, wherever an operator put it.
        configured = settings.habitat_raster_url and _local_path(settings.habitat_raster_url)
        if configured and resolved == configured.resolve():
            return
        for prefix in settings.worldbase_source_allowlist:
            local = _local_path(prefix)
            if local is not None and resolved.is_relative_to(local.resolve()):
                return
        raise _reject(url, "local files are readable only under the data directory")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https", "s3"):
        raise BadInput(
            f"Unsupported raster source scheme {scheme or '(none)'!r}: "
            "use http(s)://, s3://, storage:// or a path",
            detail={"source": url[:200]},
        )
    if not parts.hostname or parts.username or parts.password:
        raise BadInput("A raster source URL needs a host and no credentials in it")
    segments = unquote(parts.path).split("/")
    if ".." in segments or "." in segments:
        raise BadInput("A raster source URL must not contain '.' or '..' segments")
    for prefix in allowlist(settings):
        if _boundary_match(url, prefix):
            return
    raise _reject(url, "the URL matches no allow-listed prefix")


def storage_source(settings: Settings, key: str) -> str:
    """What rasterio opens for `storage://<key>` on the configured storage backend."""
    key = validate_key(key)
    prefix = settings.storage_prefix.strip("/")
    full = f"{prefix}/{key}" if prefix else key
    if settings.storage_backend == "s3":
        return f"/vsis3/{settings.storage_bucket}/{full}"
    return str(settings.local_storage_path / full)


def resolve_source(url: str, settings: Settings) -> str:
    """Check the allow-list, then return the path or URL rasterio opens for `url`."""
    check_source_allowed(url, settings)
    if url.startswith(STORAGE_SCHEME):
        return storage_source(settings, url[len(STORAGE_SCHEME) :])
    path = _local_path(url)
    if path is not None:
        return str(path.resolve())
    if url.startswith("s3://"):
        return "/vsis3/" + url[len("s3://") :]
    return url


def check_redirects(url: str, settings: Settings) -> str:
    """The final URL of an http(s) source after allowed redirects (blocking: run in a thread).

    Each hop is requested without following it; a hop outside the allow-list is refused,
    an unreachable host is 502, a timeout 504. Other URLs are returned as they are.
    """
    if not url.startswith(("http://", "https://")):
        return url
    current = url
    try:
        with httpx.Client(timeout=PROBE_TIMEOUT, follow_redirects=False) as client:
            for _ in range(MAX_REDIRECTS + 1):
                response = client.get(current, headers={"Range": "bytes=0-0"})
                if not response.is_redirect:
                    if response.status_code >= 400:
                        raise UpstreamError(
                            f"The raster source answered HTTP {response.status_code}",
                            detail={"source": url[:200], "status": response.status_code},
                        )
                    return current
                target = urljoin(current, response.headers.get("location", ""))
                check_source_allowed(target, settings)
                current = target
    except httpx.TimeoutException:
        raise UpstreamTimeout(
            "The raster source did not answer in time", detail={"source": url[:200]}
        ) from None
    except httpx.HTTPError as exc:
        raise UpstreamError(
            "The raster source is unreachable",
            detail={"source": url[:200], "reason": type(exc).__name__},
        ) from None
    raise UpstreamError("The raster source redirects too many times", detail={"source": url[:200]})


def gdal_options(settings: Settings) -> dict[str, Any]:
    """GDAL configuration for cloud reads, in one place (also used by the /cog endpoints)."""
    options: dict[str, Any] = {
        # A COG holds everything in its header: never list the "directory" of a URL.
        "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
        "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.TIF,.tiff,.TIFF,.cog",
        "GDAL_CACHEMAX": 256,  # MB of decoded block cache
        "GDAL_HTTP_MULTIPLEX": "YES",
        "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
        "GDAL_HTTP_VERSION": "2",
        "GDAL_HTTP_TIMEOUT": 20,
        "GDAL_HTTP_CONNECTTIMEOUT": 5,
        "GDAL_HTTP_MAX_RETRY": 2,
        "GDAL_HTTP_RETRY_DELAY": 0.5,
        "VSI_CACHE": "TRUE",
        "VSI_CACHE_SIZE": 50_000_000,
        "CPL_VSIL_CURL_CACHE_SIZE": 200_000_000,
        "GDAL_BAND_BLOCK_CACHE": "HASHSET",
        "PROJ_NETWORK": "OFF",
    }
    if settings.aws_endpoint_url:
        endpoint = urlsplit(settings.aws_endpoint_url)
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
    if settings.aws_endpoint_url:
        parts = urlsplit(settings.aws_endpoint_url)
        endpoint = parts.netloc + parts.path.rstrip("/")
    return _aws_session(
        settings.aws_access_key_id, settings.aws_secret_access_key, settings.aws_region, endpoint
    )


@contextlib.contextmanager
def gdal_env(settings: Settings) -> Iterator[None]:
    """`rasterio.Env` with `gdal_options`; wrap every open and read (options are per thread)."""
    with rasterio.Env(session=aws_session(settings), **gdal_options(settings)):
        yield
