"""The S3-compatible storage backend (any endpoint: AWS, MinIO, moto's server)."""

from __future__ import annotations

import builtins
import contextlib
import functools
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import anyio
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from worldbase.core.errors import BadInput, NotFound
from worldbase.core.storage import (
    CHUNK_SIZE,
    PART_SIZE,
    Body,
    RangeNotSatisfiable,
    StoredObject,
    _chunks,
    guess_type,
    normalize_prefix,
    validate_key,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class S3Storage:
    """Any S3-compatible server through one boto3 client; every call runs in a worker thread.

    Etags are the server's (an MD5 for single PUTs, an opaque value for multipart ones).
    """

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        region: str = "us-east-1",
        url_expiry_seconds: int = 3600,
        checksums_when_required: bool = False,
        timeout: float = 5.0,
    ):
        self.bucket = bucket
        self.prefix = normalize_prefix(prefix)
        self.url_expiry_seconds = url_expiry_seconds
        checksums: Literal["when_supported", "when_required"] = (
            "when_required" if checksums_when_required else "when_supported"
        )
        # boto3 clients are thread-safe; one per process shares its connection pool.
        self.client: S3Client = _boto_session().client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            region_name=region,
            config=Config(
                # A frozen server is a 503 within 2 attempts of `timeout` per read (a PUT
                # reads twice), not minutes of botocore's defaults (60 s, 4 attempts).
                retries={"total_max_attempts": 2, "mode": "standard"},
                connect_timeout=min(timeout, 3.0),
                read_timeout=timeout,
                # botocore adds CRC checksums to every upload by default; GCS's XML API
                # (and other look-alikes) take them only where S3 requires them.
                request_checksum_calculation=checksums,
                response_checksum_validation=checksums,
            ),
        )

    def _key(self, key: str) -> str:
        return self.prefix + validate_key(key)

    def _not_found(self, key: str, exc: ClientError) -> NotFound | ClientError:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchKey", "NotFound"):
            return NotFound(f"Object not found: {key}", detail={"key": key})
        return exc

    async def put(self, key: str, data: Body, *, content_type: str | None = None) -> StoredObject:
        full = self._key(key)
        content_type = content_type or guess_type(key)
        buffer, size, upload_id = bytearray(), 0, None
        parts: builtins.list[Any] = []
        try:
            async for chunk in _chunks(data):
                buffer += chunk
                size += len(chunk)
                while len(buffer) >= PART_SIZE:
                    if upload_id is None:
                        upload_id = await self._start_multipart(full, content_type)
                    part, buffer = bytes(buffer[:PART_SIZE]), buffer[PART_SIZE:]
                    parts.append(await self._upload_part(full, upload_id, len(parts) + 1, part))
            if upload_id is None:
                response = await anyio.to_thread.run_sync(
                    lambda: self.client.put_object(
                        Bucket=self.bucket, Key=full, Body=bytes(buffer), ContentType=content_type
                    )
                )
                etag = response["ETag"]
            else:
                if buffer:
                    parts.append(
                        await self._upload_part(full, upload_id, len(parts) + 1, bytes(buffer))
                    )
                done = await anyio.to_thread.run_sync(
                    lambda: self.client.complete_multipart_upload(
                        Bucket=self.bucket,
                        Key=full,
                        UploadId=upload_id,
                        MultipartUpload={"Parts": parts},
                    )
                )
                etag = done["ETag"]
        except BaseException:
            if upload_id is not None:
                await self._abort(full, upload_id)
            raise
        return StoredObject(key, size, etag.strip('"'), content_type, datetime.now(UTC))

    async def _start_multipart(self, full: str, content_type: str) -> str:
        response = await anyio.to_thread.run_sync(
            lambda: self.client.create_multipart_upload(
                Bucket=self.bucket, Key=full, ContentType=content_type
            )
        )
        return response["UploadId"]

    async def _upload_part(self, full: str, upload_id: str, number: int, body: bytes) -> Any:
        response = await anyio.to_thread.run_sync(
            lambda: self.client.upload_part(
                Bucket=self.bucket, Key=full, UploadId=upload_id, PartNumber=number, Body=body
            )
        )
        return {"PartNumber": number, "ETag": response["ETag"]}

    async def _abort(self, full: str, upload_id: str) -> None:
        with anyio.CancelScope(shield=True):
            # If this fails too, the bucket's lifecycle rule cleans up the parts.
            with contextlib.suppress(ClientError):
                await anyio.to_thread.run_sync(
                    lambda: self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=full, UploadId=upload_id
                    )
                )

    async def get(self, key: str) -> bytes:
        full = self._key(key)

        def read() -> bytes:
            body = self.client.get_object(Bucket=self.bucket, Key=full)["Body"]
            try:
                return body.read()
            finally:
                body.close()

        try:
            return await anyio.to_thread.run_sync(read)
        except ClientError as exc:
            raise self._not_found(key, exc) from None

    async def stream(
        self, key: str, *, start: int | None = None, end: int | None = None
    ) -> AsyncIterator[bytes]:
        full = self._key(key)
        range_header = ""
        if start is not None or end is not None:
            # Validated here; the size is only known to the server, which answers 416.
            first = 0 if start is None else start
            if first < 0 or (end is not None and end < first):
                raise BadInput("Invalid byte range", detail={"start": start, "end": end})
            range_header = f"bytes={first}-{'' if end is None else end}"

        def open_body() -> Any:
            if range_header:
                return self.client.get_object(Bucket=self.bucket, Key=full, Range=range_header)
            return self.client.get_object(Bucket=self.bucket, Key=full)

        try:
            response = await anyio.to_thread.run_sync(open_body)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                raise RangeNotSatisfiable(
                    "Range start is beyond the end of the object", detail={"start": start}
                ) from None
            raise self._not_found(key, exc) from None
        body = response["Body"]
        try:
            while chunk := await anyio.to_thread.run_sync(body.read, CHUNK_SIZE):
                yield chunk
        finally:
            body.close()

    async def stat(self, key: str) -> StoredObject:
        full = self._key(key)
        try:
            head = await anyio.to_thread.run_sync(
                lambda: self.client.head_object(Bucket=self.bucket, Key=full)
            )
        except ClientError as exc:
            raise self._not_found(key, exc) from None
        return StoredObject(
            key,
            head["ContentLength"],
            head["ETag"].strip('"'),
            head.get("ContentType") or guess_type(key),
            head["LastModified"],
        )

    async def exists(self, key: str) -> bool:
        try:
            await self.stat(key)
        except NotFound:
            return False
        return True

    async def delete(self, key: str) -> None:
        """Idempotent: deleting a missing key is not an error."""
        full = self._key(key)
        await anyio.to_thread.run_sync(
            lambda: self.client.delete_object(Bucket=self.bucket, Key=full)
        )

    async def list(self, prefix: str = "") -> AsyncIterator[StoredObject]:
        validate_key(prefix, allow_empty=True, partial_last=True)
        paginator = self.client.get_paginator("list_objects_v2")
        pages: Iterator[Any] = iter(
            paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix)
        )
        while (page := await anyio.to_thread.run_sync(next, pages, None)) is not None:
            for item in page.get("Contents", []):
                yield StoredObject(
                    item["Key"][len(self.prefix) :],
                    item["Size"],
                    item["ETag"].strip('"'),
                    None,
                    item["LastModified"],
                )

    async def url(self, key: str) -> str | None:
        """A presigned GET URL, valid for `url_expiry_seconds`."""
        full = self._key(key)
        return await anyio.to_thread.run_sync(
            lambda: self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": full},
                ExpiresIn=self.url_expiry_seconds,
            )
        )

    async def close(self) -> None:
        await anyio.to_thread.run_sync(self.client.close)


@functools.cache
def _boto_session() -> boto3.session.Session:
    # One session per process: it caches the parsed service models, so each further
    # client costs milliseconds instead of a quarter second.
    return boto3.session.Session()
