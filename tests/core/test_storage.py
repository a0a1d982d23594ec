"""The same storage tests against the local backend and the S3 backend (moto on loopback)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import boto3
import pytest

from worldbase.core.errors import BadInput, Conflict, NotFound
from worldbase.core.storage import (
    LocalStorage,
    RangeNotSatisfiable,
    Storage,
    StoredObject,
)
from worldbase.core.storage_backends import create_storage
from worldbase.core.storage_s3 import S3Storage
from worldbase.settings import Settings

BAD_KEYS = ["", "/abs", "a//b", "a/../b", "..", "./a", "a/", "a\x00b", "a\\b", ".wbmeta-x"]


@pytest.fixture(scope="module")
def bucket(s3_endpoint: str) -> str:
    name = f"wb-storage-{uuid.uuid4().hex[:8]}"
    boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    ).create_bucket(Bucket=name)
    return name


@pytest.fixture(params=["local", "s3"])
def make_storage(
    request: pytest.FixtureRequest, make_settings: Callable[..., Settings], tmp_path: Path
) -> Iterator[Callable[[str], Storage]]:
    """Build storages of one backend through `create_storage`; `prefix` is STORAGE_PREFIX."""
    run = uuid.uuid4().hex[:8]  # keeps tests apart inside the shared bucket

    if request.param == "s3":
        endpoint = request.getfixturevalue("s3_endpoint")
        name = request.getfixturevalue("bucket")
        overrides = {
            "storage_backend": "s3",
            "storage_bucket": name,
            "aws_endpoint_url": endpoint,
            "aws_access_key_id": "test",
            "aws_secret_access_key": "test",
        }
    else:
        overrides = {"storage_backend": "local", "storage_path": tmp_path / "objects"}

    def build(prefix: str = "") -> Storage:
        settings = make_settings(**overrides, storage_prefix=f"{run}/{prefix}")
        return create_storage(settings)

    yield build


@pytest.fixture
async def storage(make_storage: Callable[[str], Storage]) -> AsyncIterator[Storage]:
    store = make_storage("")
    yield store
    await store.close()


async def collect(iterator: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in iterator])


async def keys(store: Storage, prefix: str = "") -> list[str]:
    return [obj.key async for obj in store.list(prefix)]


async def test_backend_matches_settings(storage: Storage, request: pytest.FixtureRequest) -> None:
    expected = S3Storage if "s3" in request.node.callspec.id else LocalStorage
    assert isinstance(storage, expected)


async def test_put_get_stat_exists_delete(storage: Storage) -> None:
    body = b"hello world"
    put = await storage.put("greetings/hello.txt", body)
    assert isinstance(put, StoredObject)
    assert (put.key, put.size) == ("greetings/hello.txt", len(body))
    assert await storage.get("greetings/hello.txt") == body
    assert await storage.exists("greetings/hello.txt")

    stat = await storage.stat("greetings/hello.txt")
    assert stat.size == len(body)
    assert stat.etag == put.etag == hashlib.md5(body).hexdigest()
    assert stat.content_type == "text/plain"  # guessed from the extension
    assert stat.modified_at.tzinfo is not None

    await storage.delete("greetings/hello.txt")
    assert not await storage.exists("greetings/hello.txt")
    with pytest.raises(NotFound):
        await storage.get("greetings/hello.txt")
    await storage.delete("greetings/hello.txt")  # idempotent


async def test_explicit_content_type_round_trips(storage: Storage) -> None:
    await storage.put("blob", b"\x00\x01", content_type="image/webp")
    assert (await storage.stat("blob")).content_type == "image/webp"
    await storage.put("noext", b"x")
    assert (await storage.stat("noext")).content_type == "application/octet-stream"


async def test_missing_key_raises_not_found(storage: Storage) -> None:
    with pytest.raises(NotFound):
        await storage.get("nope/missing.bin")
    with pytest.raises(NotFound):
        await storage.stat("nope/missing.bin")
    with pytest.raises(NotFound):
        await collect(storage.stream("nope/missing.bin"))
    assert await storage.exists("nope/missing.bin") is False


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_bad_keys_are_rejected(storage: Storage, key: str) -> None:
    with pytest.raises(BadInput):
        await storage.put(key, b"x")
    with pytest.raises(BadInput):
        await storage.get(key)


async def test_list_prefix_is_a_string_prefix(storage: Storage) -> None:
    for key in ["tiles/1/a.png", "tiles/10/b.png", "tiles/2/c.png", "other/d.png", "top.txt"]:
        await storage.put(key, key.encode())
    assert await keys(storage, "tiles/") == ["tiles/1/a.png", "tiles/10/b.png", "tiles/2/c.png"]
    assert await keys(storage, "tiles/1") == ["tiles/1/a.png", "tiles/10/b.png"]
    assert await keys(storage, "t") == [
        "tiles/1/a.png",
        "tiles/10/b.png",
        "tiles/2/c.png",
        "top.txt",
    ]
    assert await keys(storage, "missing/") == []
    listed = [obj async for obj in storage.list("other/")]
    assert listed[0].size == len(b"other/d.png")
    assert listed[0].etag == (await storage.stat("other/d.png")).etag
    with pytest.raises(BadInput):
        await keys(storage, "../")


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, 4, b"01234"),  # first bytes
        (3, 6, b"3456"),  # middle
        (9, 9, b"9"),  # last byte
        (7, None, b"789"),  # open end
        (None, 2, b"012"),  # open start
        (5, 100, b"56789"),  # end clamped, as HTTP does
        (None, None, b"0123456789"),
    ],
)
async def test_range_reads(
    storage: Storage, start: int | None, end: int | None, expected: bytes
) -> None:
    await storage.put("range.bin", b"0123456789")
    assert await collect(storage.stream("range.bin", start=start, end=end)) == expected


async def test_range_errors(storage: Storage) -> None:
    await storage.put("range.bin", b"0123456789")
    with pytest.raises(RangeNotSatisfiable) as caught:
        await collect(storage.stream("range.bin", start=10))
    assert caught.value.status_code == 416
    with pytest.raises(BadInput):
        await collect(storage.stream("range.bin", start=5, end=2))
    with pytest.raises(BadInput):
        await collect(storage.stream("range.bin", start=-1))


async def test_streaming_put_of_a_multi_megabyte_body(storage: Storage) -> None:
    # 10 MiB in 1 MiB chunks: more than one S3 multipart part (8 MiB) with a short tail.
    chunk_count, chunk = 10, bytes(range(256)) * 4096
    digest = hashlib.md5()

    async def body() -> AsyncIterator[bytes]:
        for index in range(chunk_count):
            part = bytes([index]) + chunk[1:]
            digest.update(part)
            yield part

    stored = await storage.put("big/blob.bin", body())
    assert stored.size == chunk_count * len(chunk)
    assert (await storage.stat("big/blob.bin")).size == stored.size
    streamed = hashlib.md5()
    async for piece in storage.stream("big/blob.bin"):
        streamed.update(piece)
    assert streamed.hexdigest() == digest.hexdigest()
    tail = await collect(storage.stream("big/blob.bin", start=9 * len(chunk), end=9 * len(chunk)))
    assert tail == bytes([9])


async def test_failed_streaming_put_keeps_the_old_object(storage: Storage) -> None:
    await storage.put("doc.txt", b"version 1")

    async def broken() -> AsyncIterator[bytes]:
        # Past one S3 part, so the multipart upload has started and must be aborted.
        for _ in range(9):
            yield b"p" * (1024 * 1024)
        raise RuntimeError("client went away")

    with pytest.raises(RuntimeError):
        await storage.put("doc.txt", broken())
    assert await storage.get("doc.txt") == b"version 1"
    await storage.put("doc.txt", b"version 2")
    assert await storage.get("doc.txt") == b"version 2"
    assert (await storage.stat("doc.txt")).etag == hashlib.md5(b"version 2").hexdigest()
    assert await keys(storage) == ["doc.txt"]  # no temp files or sidecars listed


async def test_prefix_isolation(make_storage: Callable[[str], Storage]) -> None:
    first, second = make_storage("alpha"), make_storage("beta/")
    try:
        await first.put("shared/key.txt", b"from alpha")
        await second.put("shared/key.txt", b"from beta")
        assert await first.get("shared/key.txt") == b"from alpha"
        assert await second.get("shared/key.txt") == b"from beta"
        assert await keys(first) == ["shared/key.txt"]
        await second.delete("shared/key.txt")
        assert not await second.exists("shared/key.txt")
        assert await first.exists("shared/key.txt")
    finally:
        await first.close()
        await second.close()


async def test_url(storage: Storage) -> None:
    await storage.put("pic.png", b"png")
    url = await storage.url("pic.png")
    if isinstance(storage, S3Storage):
        import httpx

        assert url is not None and "Signature" in url
        async with httpx.AsyncClient() as http:
            response = await http.get(url)
        assert response.status_code == 200 and response.content == b"png"
    else:
        assert url is None
    with pytest.raises(BadInput):
        await storage.url("../pic.png")


async def test_local_key_collisions_are_conflicts(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path, "p")
    await store.put("a/b", b"x")
    with pytest.raises(Conflict):
        await store.put("a", b"y")
    await store.put("c", b"x")
    with pytest.raises(Conflict):
        await store.put("c/d", b"y")


async def test_local_file_without_sidecar_gets_a_fallback_etag(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    await store.put("x.json", b"{}")
    (tmp_path / "x.json").write_bytes(b'{"changed": true}')  # edited behind our back
    stat = await store.stat("x.json")
    assert stat.size == len(b'{"changed": true}')
    assert stat.etag != hashlib.md5(b"{}").hexdigest()
    assert stat.content_type == "application/json"
