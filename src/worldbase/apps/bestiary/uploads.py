"""Photos for a reconstruction: images, zips of images, or videos, sniffed from their bytes.

Every photo is decoded (bounded in pixels) and re-encoded as JPEG, so what reaches COLMAP is
always a plain, valid image. Zips are read entry by entry with limits on the number of
files, the total uncompressed size and the compression ratio, and any entry whose name
leaves the archive (absolute, `..`, drive letters) rejects the whole upload. Videos are
sampled with OpenCV into evenly spaced frames. Blocking: run in a worker thread.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import cv2
from PIL import Image

from worldbase.core.errors import BadInput, PayloadTooLarge
from worldbase.core.images import open_header, open_image, rgb_on_black

MIN_IMAGES = 3
MAX_SIDE = 4096  # photos are scaled down to this before storing
MAX_RATIO = 200  # uncompressed / compressed size of one zip entry
MAX_ZIP_ENTRIES = 5000
MAX_VIDEO_FRAMES_READ = 100_000
_VIDEO_BRANDS_NOT = (b"heic", b"heix", b"mif1", b"msf1", b"avif", b"avis")


@dataclass(frozen=True)
class Limits:
    max_images: int
    zip_max_bytes: int
    video_frames: int


@dataclass
class Intake:
    images: list[bytes] = field(default_factory=list)  # JPEG bytes
    sources: set[str] = field(default_factory=set)
    skipped: int = 0

    @property
    def source(self) -> str:
        return "+".join(sorted(self.sources)) or "images"


def sniff(head: bytes) -> str:
    """ "zip", "video" or "image" (Pillow decides whether it really is one)."""
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if head[4:8] == b"ftyp" and head[8:12] not in _VIDEO_BRANDS_NOT:
        return "video"
    if head[:4] == b"\x1aE\xdf\xa3" or (head[:4] == b"RIFF" and head[8:12] == b"AVI "):
        return "video"
    return "image"


def photo(data: bytes) -> bytes:
    """JPEG bytes of a photo. A camera JPEG of acceptable size is checked by decoding it at
    1/8 scale (fast; truncation and corruption still fail) and kept as it is, EXIF focal
    length included, which COLMAP uses; anything else is decoded and re-encoded."""
    if data[:3] == b"\xff\xd8\xff":
        # The header's size is checked before any decoding (a JPEG may claim 65500x65500).
        with open_header(data) as image:
            plain = image.format == "JPEG" and image.mode in ("RGB", "L")
            if plain and max(image.size) <= MAX_SIDE:
                try:
                    image.draft("RGB", (max(image.width // 8, 1), max(image.height // 8, 1)))
                    image.load()
                except (OSError, ValueError, SyntaxError):
                    raise BadInput("Not an image (corrupt JPEG)") from None
                return data
    return _encode(rgb_on_black(open_image(data), upright=True))


def _jpeg(data: bytes, name: str) -> bytes:
    try:
        return photo(data)
    except BadInput as exc:
        raise BadInput(f"{name}: {exc.message}") from None


def _encode(image: Image.Image) -> bytes:
    if max(image.size) > MAX_SIDE:
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95)
    return out.getvalue()


def _safe_name(name: str) -> bool:
    if not name or "\x00" in name or "\\" in name or ":" in name:
        return False
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> bytes:
    """An entry's bytes, counting what is really inflated (headers can lie)."""
    chunks, size = [], 0
    with archive.open(info) as fh:
        while chunk := fh.read(1024 * 1024):
            size += len(chunk)
            if size > budget:
                raise PayloadTooLarge("The zip expands beyond the allowed uncompressed size")
            chunks.append(chunk)
    return b"".join(chunks)


def _zip(path: Path, name: str, intake: Intake, limits: Limits) -> None:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise BadInput(f"{name}: not a readable zip archive") from None
    with archive:
        entries = archive.infolist()
        if len(entries) > MAX_ZIP_ENTRIES:
            raise BadInput(f"{name}: {len(entries)} entries; at most {MAX_ZIP_ENTRIES} are read")
        unsafe = [e.filename for e in entries if not _safe_name(e.filename)]
        if unsafe:
            raise BadInput(f"{name}: entry {unsafe[0]!r} points outside the archive")
        declared = sum(e.file_size for e in entries)
        if declared > limits.zip_max_bytes:
            raise PayloadTooLarge(
                f"{name}: {declared} bytes uncompressed; at most {limits.zip_max_bytes}"
            )
        budget = limits.zip_max_bytes
        for entry in entries:
            if entry.is_dir():
                continue
            if entry.file_size > 1024 * 1024 and entry.file_size > MAX_RATIO * max(
                entry.compress_size, 1
            ):
                raise BadInput(f"{name}: entry {entry.filename!r} is compressed suspiciously well")
            base = PurePosixPath(entry.filename).name
            if base.startswith(".") or entry.filename.startswith("__MACOSX/"):
                intake.skipped += 1
                continue
            try:
                data = _read_entry(archive, entry, budget)
            except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError):
                raise BadInput(f"{name}: entry {entry.filename!r} cannot be read") from None
            budget -= len(data)
            if sniff(data[:16]) != "image":
                intake.skipped += 1
                continue
            try:
                intake.images.append(photo(data))
            except BadInput:
                intake.skipped += 1  # a readme or a thumbnail database next to the photos
                continue
            if len(intake.images) > limits.max_images:
                raise BadInput(f"Too many images: at most {limits.max_images} per upload")
    intake.sources.add("zip")


def _video(path: Path, name: str, intake: Intake, limits: Limits) -> None:
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise BadInput(f"{name}: the video cannot be decoded")
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        wanted = limits.video_frames
        frames: list[bytes] = []

        def keep(frame: Any) -> None:
            if frame is not None and frame.size:
                frames.append(_encode(Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))))

        if count > 4 * wanted:
            # A long video: seek to each pick instead of decoding every frame in between.
            for i in range(wanted):
                capture.set(cv2.CAP_PROP_POS_FRAMES, int(i * count / wanted))
                ok, frame = capture.read()
                if ok:
                    keep(frame)
        else:
            # Short, or of unknown length: read through, keeping evenly spaced frames.
            step = max(count / wanted, 1.0) if count > 0 else 1.0
            picks = {int(i * step) for i in range(wanted)}
            index = 0
            while len(frames) < wanted and index < MAX_VIDEO_FRAMES_READ:
                if not capture.grab():
                    break
                if index in picks:
                    ok, frame = capture.retrieve()
                    if ok:
                        keep(frame)
                index += 1
    finally:
        capture.release()
    if not frames:
        raise BadInput(f"{name}: the video has no readable frames")
    intake.images.extend(frames)
    intake.sources.add("video")


def collect(
    files: list[tuple[str, Path]],
    limits: Limits,
    *,
    check: Callable[[], None] | None = None,
) -> Intake:
    """Read every uploaded file into JPEG photos; `BadInput` names the file at fault."""
    intake = Intake()
    for name, path in files:
        with path.open("rb") as fh:
            head = fh.read(16)
        if not head:
            raise BadInput(f"{name}: the file is empty")
        kind = sniff(head)
        if kind == "zip":
            _zip(path, name, intake, limits)
        elif kind == "video":
            _video(path, name, intake, limits)
        else:
            intake.images.append(_jpeg(path.read_bytes(), name))
            intake.sources.add("images")
        if len(intake.images) > limits.max_images:
            raise BadInput(f"Too many images: at most {limits.max_images} per upload")
        if check is not None:
            check()
    if len(intake.images) < MIN_IMAGES:
        raise BadInput(
            f"Too few images: {len(intake.images)} found, a reconstruction needs at least "
            f"{MIN_IMAGES} overlapping photos (20 or more work best)"
        )
    return intake
