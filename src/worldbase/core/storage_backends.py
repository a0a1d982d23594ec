"""The storage backend a process uses, chosen from its settings (local directory, S3 or GCS)."""

from __future__ import annotations

from worldbase.core.storage import LocalStorage, Storage
from worldbase.core.storage_s3 import S3Storage
from worldbase.settings import ConfigurationError, Settings


def create_storage(settings: Settings) -> Storage:
    if settings.uses_s3:  # s3, or gcs through Google's S3-compatible API
        if not settings.storage_bucket:
            raise ConfigurationError(
                f"STORAGE_BACKEND={settings.storage_backend} needs STORAGE_BUCKET"
            )
        return S3Storage(
            bucket=settings.storage_bucket,
            prefix=settings.storage_prefix,
            endpoint_url=settings.storage_endpoint_url,
            access_key_id=settings.aws_access_key_id,
            secret_access_key=settings.aws_secret_access_key,
            region=settings.storage_region,
            # GCS's XML API takes no flexible (CRC) checksums nor aws-chunked uploads.
            checksums_when_required=settings.storage_backend == "gcs",
            timeout=settings.worldbase_storage_timeout,
        )
    if settings.storage_backend == "local":
        return LocalStorage(settings.local_storage_path, settings.storage_prefix)
    raise ConfigurationError(f"Unsupported STORAGE_BACKEND {settings.storage_backend!r}")
