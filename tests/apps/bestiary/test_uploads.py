"""Photos for reconstructions: images, zips and videos sniffed from their bytes, with limits."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.apps.bestiary.conftest import Cast, png, stored_keys
from tests.bombs import jpeg_bomb, png_bomb, webp_bomb
from tests.builders import assert_error
from worldbase.apps.bestiary.settings import BestiarySettings
from worldbase.apps.bestiary.uploads import Limits, collect
from worldbase.core.errors import BadInput, PayloadTooLarge

LIMITS = Limits(max_images=16, zip_max_bytes=5 * 1024 * 1024, video_frames=6)


def _files(tmp_path: Path, *items: tuple[str, bytes]) -> list[tuple[str, Path]]:
    out = []
    for index, (name, data) in enumerate(items):
        path = tmp_path / f"f{index}"
        path.write_bytes(data)
        out.append((name, path))
    return out


def _zip(*entries: tuple[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def _jpeg_photo() -> bytes:
    pixels = (np.random.default_rng(5).random((120, 160, 3)) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _video(path: Path, frames: int) -> bytes:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    rng = np.random.default_rng(0)
    for _ in range(frames):
        writer.write((rng.random((48, 64, 3)) * 255).astype(np.uint8))
    writer.release()
    return path.read_bytes()


def test_images_zips_and_videos_become_jpeg_photos(tmp_path: Path) -> None:
    archive = _zip(
        ("photos/a.png", png(seed=1)),
        ("photos/b.png", png(seed=2)),
        ("photos/readme.txt", b"shot on a phone"),
        ("__MACOSX/photos/._a.png", b"junk"),
        ("photos/", b""),
    )
    video = _video(tmp_path / "v.mp4", 40)  # long: frames are sought
    short = _video(tmp_path / "s.mp4", 10)  # short: read through
    camera = _jpeg_photo()
    files = _files(
        tmp_path,
        ("x.bin", png()),
        ("p.zip", archive),
        ("clip", video),
        ("short", short),
        ("IMG_1.JPG", camera),
    )
    intake = collect(files, LIMITS)
    assert len(intake.images) == 1 + 2 + 6 + 6 + 1
    assert intake.images[-1] == camera  # a plain camera JPEG is kept as is (EXIF and all)
    assert intake.source == "images+video+zip" and intake.skipped == 2
    assert all(image[:3] == b"\xff\xd8\xff" for image in intake.images)


@pytest.mark.parametrize(
    ("items", "error", "words"),
    [
        ([("a.txt", b"hello world")], BadInput, "a.txt: Not an image"),
        ([("a.png", png()), ("b.png", png())], BadInput, "Too few images: 2"),
        ([(f"{i}.png", png(seed=i)) for i in range(17)], BadInput, "Too many images"),
        ([("empty.png", b"")], BadInput, "empty"),
        ([("cut.jpg", _jpeg_photo()[:2000])], BadInput, "cut.jpg: Not an image (corrupt JPEG)"),
        ([("z.zip", _zip(("../../etc/evil.png", png())))], BadInput, "outside the archive"),
        ([("z.zip", _zip(("/abs/evil.png", png())))], BadInput, "outside the archive"),
        ([("z.zip", _zip(("C:\\evil.png", png())))], BadInput, "outside the archive"),
        ([("z.zip", b"PK\x03\x04 truncated")], BadInput, "not a readable zip"),
        (
            [("z.zip", _zip(("big.png", b"\0" * (6 * 1024 * 1024))))],
            PayloadTooLarge,
            "uncompressed",
        ),
        ([("z.zip", _zip(("bomb.png", b"\0" * (3 * 1024 * 1024))))], BadInput, "suspiciously"),
        ([("v.mp4", b"\0\0\0\x18ftypmp42" + b"\x01" * 500)], BadInput, "v.mp4: the video"),
    ],
)
def test_bad_uploads_are_refused_with_a_reason(
    tmp_path: Path, items: list[tuple[str, bytes]], error: type[Exception], words: str
) -> None:
    with pytest.raises(error) as raised:
        collect(_files(tmp_path, *items), LIMITS)
    assert words in str(raised.value)


def test_the_upload_endpoint_stores_photos_for_their_owner(cast: Cast) -> None:
    client = cast.client
    files = [("files", (f"{i}.png", png(seed=i), "image/png")) for i in range(3)]
    response = client.post("/api/reconstruct/upload", files=files, headers=cast.as_("owner"))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["image_count"] == 3 and body["source"] == "images"
    assert len(stored_keys(client, f"bestiary/uploads/{body['upload_id']}/")) == 3
    anonymous = client.post("/api/reconstruct/upload", files=files)
    assert anonymous.status_code == 401


def test_a_bad_upload_stores_nothing(cast: Cast, client: TestClient) -> None:
    user = cast.as_("owner")
    cases = [
        [("files", ("a.png", png(), "image/png")), ("files", ("b.txt", b"text", "text/plain"))],
        [("files", ("a.zip", _zip(("../x.png", png())), "application/zip"))],
        [("files", ("a.png", png(), "image/png"))],
    ]
    for files in cases:
        response = client.post("/api/reconstruct/upload", files=files, headers=user)
        assert response.status_code == 422, response.text
        assert response.json()["status"] == "error"
    missing = client.post("/api/reconstruct/upload", headers=user)
    assert missing.status_code == 422
    assert stored_keys(client) == []


def test_an_upload_over_the_size_limit_is_413(
    cast: Cast, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = client.app.state.services.settings  # type: ignore[attr-defined]
    monkeypatch.setattr(settings.app(BestiarySettings), "upload_max_bytes", 5000)
    files = [("files", (f"{i}.png", png(64, 64, seed=i), "image/png")) for i in range(3)]
    response = client.post("/api/reconstruct/upload", files=files, headers=cast.as_("owner"))
    assert_error(response, 413)
    assert stored_keys(client) == []


def test_decompression_bombs_in_a_reconstruction_upload_are_422(cast: Cast) -> None:
    good = [("files", (f"{i}.png", png(seed=i), "image/png")) for i in range(3)]
    for name, bomb in (("a.png", png_bomb()), ("b.webp", webp_bomb()), ("c.jpg", jpeg_bomb())):
        files = [*good, ("files", (name, bomb, "application/octet-stream"))]
        response = cast.client.post(
            "/api/reconstruct/upload", files=files, headers=cast.as_("owner")
        )
        body = assert_error(response, 422)
        assert name in body["message"] and "too large" in body["message"]
    assert stored_keys(cast.client, "bestiary/uploads/") == []
    # Inside a zip, an entry that is no usable image is skipped, as a readme would be.
    bombs = _zip(("a.png", png_bomb()), ("b.webp", webp_bomb()), ("c.jpg", jpeg_bomb()))
    zipped = [*good, ("files", ("z.zip", bombs, "application/zip"))]
    response = cast.client.post("/api/reconstruct/upload", files=zipped, headers=cast.as_("owner"))
    assert response.status_code == 201, response.text
    assert response.json()["image_count"] == 3
