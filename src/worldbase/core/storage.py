"""Object storage: one small protocol, a local-directory backend (S3 lives in storage_s3.py,
the choice between them in storage_backends.py).

Keys are '/'-separated relative paths (`tiles/3/4/5.png`). `STORAGE_PREFIX` is prepended
to every key on both backends and stripped again when listing, so several deployments
can share one bucket or directory. Missing keys raise `NotFound`; bad keys `BadInput`;
a range that starts past the end raises `RangeNotSatisfiable` (416).

`stream` and `list` are async generators: their errors surface on the first iteration,
so a route that must answer 404/416 before sending headers calls `stat` first (it needs
the size and etag for its headers anyway).
"""

from __future__ import annotations

import builtins
import hashlib
import json
import mimetypes
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol

import anyio

from worldbase.core.errors import BadInput, Conflict, NotFound

CHUNK_SIZE = 1024 * 1024
# S3 parts must be >= 5 MiB except the last; bodies below one part go up in a single PUT.
PART_SIZE = 8 * 1024 * 1024
# Names starting with this are the local backend's own files (sidecars, temp files).
RESERVED = ".wb"
DEFAULT_CONTENT_TYPE = "application/octet-stream"

Body = bytes | AsyncIterator[bytes]


class RangeNotSatisfiable(BadInput):
    status_code = 416


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    etag: str
    # None in `list()` results: S3 listings do not carry it; `stat()` always has it.
    content_type: str | None
    modified_at: datetime


class Storage(Protocol):
    async def put(
        self, key: str, data: Body, *, content_type: str | None = None
    ) -> StoredObject: ...
    async def get(self, key: str) -> bytes: ...
    def stream(
        self, key: str, *, start: int | None = None, end: int | None = None
    ) -> AsyncIterator[bytes]: ...
    async def stat(self, key: str) -> StoredObject: ...
    async def exists(self, key: str) -> bool: ...
    async def delete(self, key: str) -> None: ...
    def list(self, prefix: str = "") -> AsyncIterator[StoredObject]: ...
    async def url(self, key: str) -> str | None: ...
    async def close(self) -> None: ...


# --- Keys and ranges ---------------------------------------------------------------------------


def validate_key(key: str, *, allow_empty: bool = False, partial_last: bool = False) -> str:
    """Return `key` if it is a safe relative path, else raise `BadInput`.

    `partial_last` allows a trailing '/' or an empty last segment (list prefixes).
    """
    if not isinstance(key, str) or (not key and not allow_empty):
        raise BadInput("Storage key must be a non-empty string", detail={"key": key})
    if not key:
        return key
    if "\x00" in key or "\\" in key or key.startswith("/"):
        raise BadInput("Storage key must be a relative '/'-separated path", detail={"key": key})
    segments = key.split("/")
    if partial_last:
        segments = segments[:-1]
    for segment in segments:
        if segment in ("", ".", "..") or segment.startswith(RESERVED):
            raise BadInput(f"Invalid storage key segment {segment!r}", detail={"key": key})
    return key


def normalize_prefix(prefix: str) -> str:
    """'a/b', '/a/b/' and 'a/b/' all become 'a/b/'; '' stays ''."""
    prefix = prefix.strip("/")
    return validate_key(prefix, allow_empty=True) + "/" if prefix else ""


def resolve_range(start: int | None, end: int | None, size: int) -> tuple[int, int]:
    """Inclusive byte range like HTTP's; `end` past the size is clamped, as HTTP does."""
    first = 0 if start is None else start
    last = size - 1 if end is None else min(end, size - 1)
    if first < 0 or (end is not None and end < first):
        raise BadInput("Invalid byte range", detail={"start": start, "end": end})
    if start is not None and first >= size:
        raise RangeNotSatisfiable(
            "Range start is beyond the end of the object", detail={"start": start, "size": size}
        )
    return first, last


def guess_type(key: str) -> str:
    return mimetypes.guess_type(key)[0] or DEFAULT_CONTENT_TYPE


async def _chunks(data: Body) -> AsyncIterator[bytes]:
    if isinstance(data, bytes | bytearray | memoryview):
        yield bytes(data)
        return
    async for chunk in data:
        if chunk:
            yield chunk


# --- Local directory ---------------------------------------------------------------------------


class LocalStorage:
    """Files under `root/<prefix>/<key>`; a sidecar `.wbmeta-<name>.json` keeps etag and type.

    The etag is the MD5 of the content, computed while writing. A file put there by other
    means (no sidecar, or a sidecar that no longer matches its size/mtime) gets a
    size-mtime etag and a content type guessed from its extension.
    """

    def __init__(self, root: Path, prefix: str = ""):
        self.root = Path(root)
        self.prefix = normalize_prefix(prefix)

    def _path(self, key: str) -> Path:
        return self.root / (self.prefix + validate_key(key))

    @staticmethod
    def _meta_path(path: Path) -> Path:
        return path.with_name(f"{RESERVED}meta-{path.name}.json")

    async def put(self, key: str, data: Body, *, content_type: str | None = None) -> StoredObject:
        path = self._path(key)
        content_type = content_type or guess_type(key)
        try:
            await anyio.to_thread.run_sync(lambda: path.parent.mkdir(parents=True, exist_ok=True))
        except (FileExistsError, NotADirectoryError):
            raise _collision(key) from None
        tmp = path.with_name(f"{RESERVED}tmp-{uuid.uuid4().hex}")
        digest = hashlib.md5(usedforsecurity=False)
        fh: IO[bytes] = await anyio.to_thread.run_sync(tmp.open, "wb")
        try:
            try:
                async for chunk in _chunks(data):
                    await anyio.to_thread.run_sync(_write_chunk, fh, chunk, digest)
                await anyio.to_thread.run_sync(_flush, fh)
            finally:
                await anyio.to_thread.run_sync(fh.close)
            return await anyio.to_thread.run_sync(
                self._commit, key, tmp, path, digest.hexdigest(), content_type
            )
        except IsADirectoryError:
            raise _collision(key) from None
        finally:
            await anyio.to_thread.run_sync(lambda: tmp.unlink(missing_ok=True))

    def _commit(
        self, key: str, tmp: Path, path: Path, etag: str, content_type: str
    ) -> StoredObject:
        st = tmp.stat()
        meta = {"etag": etag, "content_type": content_type, "size": st.st_size}
        meta["mtime_ns"] = st.st_mtime_ns  # rename keeps it: lets stat() trust the sidecar
        meta_tmp = path.with_name(f"{RESERVED}tmp-{uuid.uuid4().hex}")
        try:
            meta_tmp.write_text(json.dumps(meta))
            os.replace(tmp, path)
            os.replace(meta_tmp, self._meta_path(path))
        finally:
            meta_tmp.unlink(missing_ok=True)
        _fsync_dir(path.parent)
        return _object(key, st, etag, content_type)

    def _stat_sync(self, key: str, path: Path, *, with_type: bool = True) -> StoredObject:
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"Object not found: {key}", detail={"key": key}) from None
        if not path.is_file():
            raise NotFound(f"Object not found: {key}", detail={"key": key})
        etag, content_type = f"{st.st_size:x}-{st.st_mtime_ns:x}", guess_type(key)
        try:
            meta = json.loads(self._meta_path(path).read_text())
            if meta.get("size") == st.st_size and meta.get("mtime_ns") == st.st_mtime_ns:
                etag, content_type = meta["etag"], meta["content_type"]
        except (OSError, ValueError, KeyError):
            pass
        return _object(key, st, etag, content_type if with_type else None)

    async def stat(self, key: str) -> StoredObject:
        return await anyio.to_thread.run_sync(self._stat_sync, key, self._path(key))

    async def exists(self, key: str) -> bool:
        path = self._path(key)
        return await anyio.to_thread.run_sync(path.is_file)

    async def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return await anyio.to_thread.run_sync(path.read_bytes)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise NotFound(f"Object not found: {key}", detail={"key": key}) from None

    async def stream(
        self, key: str, *, start: int | None = None, end: int | None = None
    ) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            fh: IO[bytes] = await anyio.to_thread.run_sync(path.open, "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise NotFound(f"Object not found: {key}", detail={"key": key}) from None
        try:
            # The size of the file we opened, even if a put replaces it meanwhile.
            size = os.fstat(fh.fileno()).st_size
            first, last = resolve_range(start, end, size)
            await anyio.to_thread.run_sync(fh.seek, first)
            remaining = last - first + 1
            while remaining > 0:
                chunk = await anyio.to_thread.run_sync(fh.read, min(CHUNK_SIZE, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                yield chunk
        finally:
            await anyio.to_thread.run_sync(fh.close)

    async def delete(self, key: str) -> None:
        """Idempotent, like S3: deleting a missing key is not an error."""
        path = self._path(key)

        def remove() -> None:
            path.unlink(missing_ok=True)
            self._meta_path(path).unlink(missing_ok=True)

        await anyio.to_thread.run_sync(remove)

    async def list(self, prefix: str = "") -> AsyncIterator[StoredObject]:
        validate_key(prefix, allow_empty=True, partial_last=True)
        found = await anyio.to_thread.run_sync(self._list_sync, prefix)
        for item in found:
            yield item

    def _list_sync(self, prefix: str) -> builtins.list[StoredObject]:
        base = self.root / self.prefix if self.prefix else self.root
        # Walk only below the deepest complete segment of the prefix.
        start = base.joinpath(*prefix.split("/")[:-1])
        results: builtins.list[StoredObject] = []
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = [d for d in dirnames if not d.startswith(RESERVED)]
            for name in filenames:
                if name.startswith(RESERVED):
                    continue
                path = Path(dirpath) / name
                key = path.relative_to(base).as_posix()
                if key.startswith(prefix):
                    try:
                        results.append(self._stat_sync(key, path, with_type=False))
                    except NotFound:
                        continue  # deleted while walking
        return sorted(results, key=lambda obj: obj.key)

    async def url(self, key: str) -> str | None:
        self._path(key)
        return None  # served through the app's own routes

    async def close(self) -> None:
        return None


def _collision(key: str) -> Conflict:
    # S3 allows both `a` and `a/b`; a directory tree cannot.
    return Conflict(f"Key collides with an existing object or folder: {key}", detail={"key": key})


def _write_chunk(fh: IO[bytes], chunk: bytes, digest: Any) -> None:
    fh.write(chunk)
    digest.update(chunk)


def _flush(fh: IO[bytes]) -> None:
    fh.flush()
    os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    # Makes the rename itself durable; some filesystems refuse directory fsync.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _object(key: str, st: os.stat_result, etag: str, content_type: str | None) -> StoredObject:
    modified = datetime.fromtimestamp(st.st_mtime, tz=UTC)
    return StoredObject(key, st.st_size, etag, content_type, modified)
