"""Streaming a stored image over HTTP: ETag, Cache-Control, 304 and byte ranges (206/416)."""

from __future__ import annotations

import re

from fastapi.responses import RedirectResponse, Response, StreamingResponse
from starlette.requests import Request

from worldbase.core.errors import error_response
from worldbase.core.storage import Storage

CACHE_CONTROL = "public, max-age=86400"  # a stored file never changes; its id may be deleted
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _not_satisfiable(size: int) -> Response:
    return error_response(
        416,
        "Range not satisfiable",
        {"size": size},
        headers={"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"},
    )


def _parse_range(header: str, size: int) -> tuple[int, int] | Response | None:
    """(first, last) inclusive, None for the whole file, or the 416 answer."""
    match = _RANGE.match(header.strip())
    if match is None:
        return None  # malformed or multi-range: RFC 9110 lets us send the whole file
    start, end = match.groups()
    if not start and not end:
        return None
    if not start:  # suffix: the last N bytes
        length = int(end)
        if length == 0:
            return _not_satisfiable(size)
        return max(0, size - length), size - 1
    first = int(start)
    last = min(int(end), size - 1) if end else size - 1
    if first >= size or (end and int(end) < first):
        return _not_satisfiable(size)
    return first, last


async def stream_object(request: Request, storage: Storage, key: str) -> Response:
    info = await storage.stat(key)  # NotFound (404) before any header is sent
    etag = f'"{info.etag}"'
    headers = {
        "ETag": etag,
        "Cache-Control": CACHE_CONTROL,
        "Accept-Ranges": "bytes",
        "Last-Modified": info.modified_at.strftime("%a, %d %b %Y %H:%M:%S GMT"),
    }
    match = request.headers.get("if-none-match")
    if match and (match.strip() == "*" or etag in [m.strip() for m in match.split(",")]):
        return Response(status_code=304, headers=headers)
    media = info.content_type or "image/webp"
    wanted = request.headers.get("range")
    if_range = request.headers.get("if-range")
    span = (
        _parse_range(wanted, info.size) if wanted and (not if_range or if_range == etag) else None
    )
    if isinstance(span, Response):
        return span
    if span is None:
        headers["Content-Length"] = str(info.size)
        return StreamingResponse(storage.stream(key), media_type=media, headers=headers)
    first, last = span
    headers["Content-Range"] = f"bytes {first}-{last}/{info.size}"
    headers["Content-Length"] = str(last - first + 1)
    return StreamingResponse(
        storage.stream(key, start=first, end=last),
        status_code=206,
        media_type=media,
        headers=headers,
    )


async def serve_object(request: Request, storage: Storage, key: str) -> Response:
    """Like `stream_object`, but a backend that presigns URLs (S3) answers with a redirect
    to one: the object store then serves ETag, 304 and ranges itself."""
    url = await storage.url(key)
    if url is None:
        return await stream_object(request, storage, key)
    # The presigned URL expires: the redirect itself must not be cached for long.
    return RedirectResponse(url, status_code=307, headers={"Cache-Control": "no-store"})
