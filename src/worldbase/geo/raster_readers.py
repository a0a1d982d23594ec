"""Raster readers and where they run: the pooled rio-tiler readers over the safe GeoTIFF
opener, the render thread pool, and the translation of read failures into domain errors.

Opened datasets are kept in a small pool (`READERS`), an LRU keyed by the resolved source,
holding a few idle readers per source: a tile costs no open/header read, and a GDAL
dataset is never used by two threads at once (handles are not thread-safe). Rendering runs
in a dedicated thread pool (GDAL, numpy and zlib release the GIL), never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import attr
import morecantile
from rasterio.errors import RasterioError, RasterioIOError
from rio_tiler.constants import WEB_MERCATOR_TMS
from rio_tiler.errors import (
    InvalidBandName,
    InvalidColorFormat,
    InvalidColorMapName,
    InvalidExpression,
    InvalidFormat,
    MissingBands,
    PointOutsideBounds,
    RioTilerError,
)
from rio_tiler.io import Reader

from worldbase.core.errors import BadInput, DomainError, NotFound, UpstreamError, UpstreamTimeout
from worldbase.geo.raster_params import RenderParams
from worldbase.geo.raster_relay import last_error
from worldbase.geo.raster_sources import gdal_env, gdal_path, open_dataset
from worldbase.settings import Settings

T = TypeVar("T")

RENDER_THREADS = 8

_EXECUTOR = ThreadPoolExecutor(max_workers=RENDER_THREADS, thread_name_prefix="raster")


# --- Readers -----------------------------------------------------------------------------------


@attr.s
class SafeReader(Reader):
    """rio-tiler's Reader over `open_dataset`: read-only, GeoTIFF driver only."""

    def __attrs_post_init__(self) -> None:
        if not self.dataset:
            assert self.input is not None
            self.dataset = self._ctx_stack.enter_context(open_dataset(self.input))
        super().__attrs_post_init__()


class ReaderPool:
    """Open rio-tiler readers by resolved source: an LRU of sources, a few idle readers each.

    `reader()` lends one reader to one thread; it goes back to the pool afterwards, or is
    closed when its source was evicted meanwhile or the read failed.
    """

    def __init__(self, max_sources: int = 32, max_idle: int = RENDER_THREADS):
        self.max_sources = max_sources
        self.max_idle = max_idle
        self._lock = threading.Lock()
        # Keyed by (source, TileMatrixSet id): a reader is bound to its TMS.
        self._idle: OrderedDict[tuple[str, str], list[Reader]] = OrderedDict()

    def _take(self, key: tuple[str, str]) -> Reader | None:
        with self._lock:
            idle = self._idle.get(key)
            if idle is None:
                return None
            self._idle.move_to_end(key)
            return idle.pop() if idle else None

    def _give_back(self, key: tuple[str, str], reader: Reader) -> None:
        evicted: list[Reader] = []
        with self._lock:
            idle = self._idle.setdefault(key, [])
            self._idle.move_to_end(key)
            if len(idle) < self.max_idle:
                idle.append(reader)
            else:
                evicted.append(reader)
            while len(self._idle) > self.max_sources:
                _, old = self._idle.popitem(last=False)
                evicted.extend(old)
        for item in evicted:
            _close(item)

    def _open(self, source: str, settings: Settings, tms: morecantile.TileMatrixSet) -> Reader:
        with warnings.catch_warnings(action="ignore"):
            reader = SafeReader(gdal_path(source, settings), tms=tms)
        try:
            require_crs(reader, source)
        except Exception:
            _close(reader)
            raise
        return reader

    @contextlib.contextmanager
    def reader(
        self, source: str, settings: Settings, tms: morecantile.TileMatrixSet | None = None
    ) -> Iterator[Reader]:
        tms = tms or WEB_MERCATOR_TMS
        key = (source, str(tms.id))
        reader = self._take(key) or self._open(source, settings, tms)
        ok = False
        try:
            yield reader
            ok = True
        finally:
            if ok:
                self._give_back(key, reader)
            else:
                _close(reader)

    def forget(self, source: str) -> None:
        with self._lock:
            keys = [key for key in self._idle if key[0] == source]
            idle = [r for key in keys for r in self._idle.pop(key)]
        for item in idle:
            _close(item)

    def clear(self) -> None:
        with self._lock:
            idle = [r for readers in self._idle.values() for r in readers]
            self._idle.clear()
        for item in idle:
            _close(item)


def _close(reader: Reader) -> None:
    with contextlib.suppress(Exception):
        reader.close()


READERS = ReaderPool()


# --- Errors ----------------------------------------------------------------------------------


def open_error(source: str, exc: Exception) -> DomainError:
    relayed = last_error(source)
    if relayed is not None:
        return relayed  # the policy's refusal or the upstream's own failure
    text = str(exc)
    remote = source.startswith(("http://", "https://", "s3://", "/vsis3/"))
    if "timed out" in text.lower() or "timeout" in text.lower():
        return UpstreamTimeout(
            "The raster source did not answer in time", detail={"source": source}
        )
    if remote:
        return UpstreamError(
            "The raster source could not be read", detail={"source": source, "reason": text[:200]}
        )
    if "No such file" in text or "does not exist" in text:
        return NotFound("Raster source not found", detail={"source": source})
    return BadInput("The source is not a readable raster", detail={"source": source})


def require_crs(reader: Reader, source: str) -> None:
    """A raster without a CRS cannot be placed on a map (rio-tiler fails on it with an
    AttributeError, a 500): 422 instead. The reader is closed."""
    if reader.crs is None:
        _close(reader)
        raise BadInput(
            "The raster has no CRS (coordinate reference system), so it cannot be placed on a map",
            detail={"source": source},
        )


def check_bands(params: RenderParams, count: int) -> None:
    for index in params.band_indexes():
        if index > count:
            name = "expression" if params.expression else "bidx"
            raise BadInput(
                f"Band {index} does not exist: the raster has {count} band(s)",
                detail=[
                    {
                        "loc": ["query", name],
                        "msg": f"band {index} > {count}",
                        "type": "value_error",
                    }
                ],
            )


def band_count(reader: Reader) -> int:
    dataset = reader.dataset
    assert dataset is not None
    return int(dataset.count)


def with_reader(
    source: str,
    settings: Settings,
    fn: Callable[[Reader], T],
    tms: morecantile.TileMatrixSet | None = None,
) -> T:
    """Run `fn` with a pooled reader for `source` (already allow-listed and resolved)."""
    try:
        with gdal_env(settings), READERS.reader(source, settings, tms) as reader:
            return fn(reader)
    except (InvalidBandName, InvalidExpression, MissingBands) as exc:
        raise BadInput(f"Invalid bands or expression: {exc}") from None
    except (InvalidColorMapName, InvalidColorFormat) as exc:
        raise BadInput(f"Invalid colormap: {exc}") from None
    except InvalidFormat as exc:
        raise BadInput(f"Cannot encode these pixels in this format: {exc}") from None
    except PointOutsideBounds:
        raise NotFound("The point is outside the raster's bounds") from None
    except (RasterioIOError, RasterioError) as exc:
        raise open_error(source, exc) from None
    except (RioTilerError, IndexError) as exc:
        raise BadInput(f"Invalid render parameters: {exc}") from None


async def run_in_pool(fn: Callable[[], T]) -> T:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_EXECUTOR, fn)
