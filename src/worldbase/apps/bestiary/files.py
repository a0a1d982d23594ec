"""Reading uploads with a size cap, and serving stored files."""

from __future__ import annotations

from fastapi import UploadFile
from fastapi.responses import Response, StreamingResponse

from worldbase.core.errors import BadInput, PayloadTooLarge
from worldbase.core.storage import Storage

CHUNK = 1024 * 1024


async def read_capped(upload: UploadFile, limit: int) -> bytes:
    chunks, size = [], 0
    while chunk := await upload.read(CHUNK):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The file is larger than {limit} bytes", detail={"limit": limit})
        chunks.append(chunk)
    if size == 0:
        raise BadInput("The uploaded file is empty")
    return b"".join(chunks)


async def serve(
    storage: Storage,
    key: str,
    *,
    media_type: str,
    filename: str | None = None,
    max_age: int = 3600,
    if_none_match: str | None = None,
) -> Response:
    """A stored object as a streamed response (404 when it is missing; 304 when the client's
    `If-None-Match` names its ETag)."""
    meta = await storage.stat(key)
    etag = f'"{meta.etag}"'
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={max_age}"}
    if if_none_match and etag in {tag.strip() for tag in if_none_match.split(",")}:
        return Response(status_code=304, headers=headers)
    headers["Content-Length"] = str(meta.size)
    if filename:
        headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return StreamingResponse(storage.stream(key), media_type=media_type, headers=headers)
