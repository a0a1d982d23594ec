"""Render parameters of raster tiles, with TiTiler's names, parsed once with clear 4xx errors.

`RenderParams` is what the engine takes; `parse_render_params` builds it from a mapping of
raw values (query strings, or a layer's JSON `tileParams`: `bidx` may be `"1,2,3"` or
`[1, 2, 3]`, `rescale` `"0,30"` or `[[0, 30]]`, `colormap` a JSON string or an object).
`RenderQuery` is the FastAPI dependency: it documents the query parameters and keeps only
those the client sent, so a layer's defaults can be merged under them.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

import numexpr
import numpy
from fastapi import Depends, Query
from rasterio.enums import Resampling
from rio_tiler.colormap import cmap as default_cmaps

from worldbase.core.errors import BadInput

RESAMPLING = tuple(r.name for r in Resampling if r.value <= 13)
MAX_TILESIZE = 1024
MAX_BANDS = 16
EXPRESSION = re.compile(r"^[A-Za-z0-9_\s.+\-*/%()<>=!&|~,;:\[\]]{1,500}$")
# Band references in an expression: b1, b2, ... (rio-tiler's names).
BAND_REF = re.compile(r"\bb(\d+)\b")
RENDER_KEYS = (
    "bidx",
    "expression",
    "nodata",
    "rescale",
    "colormap_name",
    "colormap",
    "resampling",
    "return_mask",
    "buffer",
    "tilesize",
)


@dataclass(frozen=True)
class RenderParams:
    bidx: tuple[int, ...] | None = None
    expression: str | None = None
    nodata: float | None = None
    rescale: tuple[tuple[float, float], ...] | None = None
    colormap_name: str | None = None
    # Parsed; `colormap_json` (canonical JSON) is what cache keys use.
    colormap: Any = field(default=None, compare=False, hash=False)
    colormap_json: str | None = None
    resampling: str = "nearest"
    return_mask: bool = True
    buffer: float | None = None
    tilesize: int | None = None

    def cache_key(self) -> str:
        """A canonical string of every parameter (part of a tile cache key)."""
        values = {k: getattr(self, k) for k in RENDER_KEYS if k != "colormap"}
        values["colormap"] = self.colormap_json
        return json.dumps(values, sort_keys=True, separators=(",", ":"), default=list)

    def band_indexes(self) -> tuple[int, ...]:
        """Bands the parameters read (explicit `bidx`, or those an expression names)."""
        if self.expression:
            return tuple(sorted({int(n) for n in BAND_REF.findall(self.expression)}))
        return self.bidx or ()

    def color_map(self) -> Any:
        if self.colormap is not None:
            return self.colormap
        if self.colormap_name:
            return default_cmaps.get(self.colormap_name)
        return None


def _bad(name: str, message: str) -> BadInput:
    return BadInput(
        f"Invalid render parameter {name!r}: {message}",
        detail=[{"loc": ["query", name], "msg": message, "type": "value_error"}],
    )


def _numbers(name: str, value: Any) -> list[float]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise _bad(name, "expected comma-separated numbers")
    try:
        return [float(item) for item in items]
    except (TypeError, ValueError):
        raise _bad(name, "expected comma-separated numbers") from None


def _bidx(value: Any) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items or len(items) > MAX_BANDS:
        raise _bad("bidx", f"expected 1 to {MAX_BANDS} band indexes such as 1,2,3")
    try:
        indexes = tuple(int(item) for item in items)
    except (TypeError, ValueError):
        raise _bad("bidx", "band indexes are integers starting at 1") from None
    if any(i < 1 for i in indexes):
        raise _bad("bidx", "band indexes start at 1")
    return indexes


def _rescale(values: list[Any]) -> tuple[tuple[float, float], ...]:
    ranges: list[tuple[float, float]] = []
    for value in values:
        if isinstance(value, list | tuple) and value and isinstance(value[0], list | tuple):
            ranges.extend(_rescale(list(value)))
            continue
        numbers = _numbers("rescale", value)
        if len(numbers) != 2:
            raise _bad("rescale", "each range is two numbers 'min,max'")
        low, high = numbers
        if not low < high:
            raise _bad("rescale", "each range needs min < max")
        ranges.append((low, high))
    if not ranges or len(ranges) > MAX_BANDS:
        raise _bad("rescale", "expected 1 to 16 ranges 'min,max'")
    return tuple(ranges)


def _color(name: str, value: Any) -> tuple[int, int, int, int]:
    if isinstance(value, str) and re.fullmatch(r"#?([0-9a-fA-F]{6}|[0-9a-fA-F]{8})", value):
        text = value.lstrip("#")
        rgba = [int(text[i : i + 2], 16) for i in range(0, len(text), 2)]
        return (rgba[0], rgba[1], rgba[2], rgba[3] if len(rgba) == 4 else 255)
    if isinstance(value, list | tuple) and len(value) in (3, 4):
        try:
            rgba = [int(v) for v in value]
        except (TypeError, ValueError):
            raise _bad(name, "colors are '#rrggbb[aa]' or [r, g, b(, a)]") from None
        if all(0 <= v <= 255 for v in rgba):
            return (rgba[0], rgba[1], rgba[2], rgba[3] if len(rgba) == 4 else 255)
    raise _bad(name, "colors are '#rrggbb[aa]' or [r, g, b(, a)] with 0..255 values")


def _colormap(value: Any) -> tuple[Any, str]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise _bad("colormap", "not valid JSON") from None
    if isinstance(value, dict) and value and len(value) <= 256:
        try:
            parsed = {int(float(k)): _color("colormap", v) for k, v in value.items()}
        except ValueError:
            raise _bad("colormap", "keys are pixel values (integers)") from None
        canonical = json.dumps(sorted(parsed.items()))
        return parsed, canonical
    if isinstance(value, list) and value and len(value) <= 256:
        intervals: list[tuple[tuple[float, float], tuple[int, int, int, int]]] = []
        for item in value:
            if not (isinstance(item, list | tuple) and len(item) == 2):
                raise _bad("colormap", "intervals are [[min, max], color]")
            low_high = _numbers("colormap", item[0])
            if len(low_high) != 2:
                raise _bad("colormap", "intervals are [[min, max], color]")
            intervals.append(((low_high[0], low_high[1]), _color("colormap", item[1])))
        return intervals, json.dumps(intervals)
    raise _bad("colormap", "expected a JSON object {value: color} or a list of intervals")


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
        return value.lower() in ("true", "1", "yes")
    raise _bad(name, "expected true or false")


def _float(name: str, value: Any) -> float:
    if isinstance(value, str) and value.lower() == "nan":
        return float("nan")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _bad(name, "expected a number") from None
    return number


def _flat_pair(value: Any) -> bool:
    """`[0, 30]`: one range written flat (a layer's JSON may say so)."""
    return (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, int | float) for v in value)
    )


def parse_render_params(raw: Mapping[str, Any]) -> RenderParams:
    """`RenderParams` from raw values; unknown keys are ignored, bad ones raise `BadInput`."""
    values: dict[str, Any] = {}
    if raw.get("bidx") not in (None, ""):
        values["bidx"] = _bidx(raw["bidx"])
    expression = raw.get("expression")
    if expression not in (None, ""):
        if not isinstance(expression, str) or not EXPRESSION.match(expression):
            raise _bad("expression", "only band names (b1, b2, ...), numbers and operators")
        if not BAND_REF.search(expression):
            raise _bad("expression", "the expression names no band (b1, b2, ...)")
        bands = {f"b{n}": numpy.zeros(1) for n in BAND_REF.findall(expression)}
        for part in expression.split(";"):
            error = numexpr.validate(part, local_dict=bands)
            if error is not None:
                raise _bad("expression", f"not a valid expression ({str(error)[:100]})")
        values["expression"] = expression
    if raw.get("nodata") not in (None, ""):
        values["nodata"] = _float("nodata", raw["nodata"])
    rescale = raw.get("rescale")
    if _flat_pair(rescale):
        rescale = [list(rescale)]  # type: ignore[arg-type]  # checked by _flat_pair
    if rescale not in (None, "", []):
        values["rescale"] = _rescale(
            list(rescale) if isinstance(rescale, list | tuple) else [rescale]
        )
    name = raw.get("colormap_name")
    if name not in (None, ""):
        if not isinstance(name, str) or name.lower() not in default_cmaps.list():
            raise _bad("colormap_name", "unknown colormap (see rio-tiler's colormap names)")
        values["colormap_name"] = name.lower()
    if raw.get("colormap") not in (None, ""):
        if "colormap_name" in values:
            raise _bad("colormap", "give either 'colormap' or 'colormap_name', not both")
        values["colormap"], values["colormap_json"] = _colormap(raw["colormap"])
    resampling = raw.get("resampling")
    if resampling not in (None, ""):
        if resampling not in RESAMPLING:
            raise _bad("resampling", f"one of {', '.join(RESAMPLING)}")
        values["resampling"] = resampling
    if raw.get("return_mask") not in (None, ""):
        values["return_mask"] = _bool("return_mask", raw["return_mask"])
    if raw.get("buffer") not in (None, ""):
        buffer = _float("buffer", raw["buffer"])
        if not (0 <= buffer <= 64 and (buffer * 2).is_integer()):
            raise _bad("buffer", "a multiple of 0.5 between 0 and 64")
        values["buffer"] = buffer or None
    if raw.get("tilesize") not in (None, ""):
        try:
            tilesize = int(raw["tilesize"])
        except (TypeError, ValueError):
            raise _bad("tilesize", "expected an integer") from None
        if not 64 <= tilesize <= MAX_TILESIZE:
            raise _bad("tilesize", f"between 64 and {MAX_TILESIZE}")
        values["tilesize"] = tilesize
    return RenderParams(**values)


@dataclass
class RenderQuery:
    """TiTiler's render query parameters; `raw` holds only those the client sent."""

    bidx: Annotated[
        list[str] | None,
        Query(description="Band indexes, e.g. `1,2,3` (or repeated `bidx=1&bidx=2`)"),
    ] = None
    expression: Annotated[
        str | None, Query(description="Band math, e.g. `(b1-b2)/(b1+b2)`", max_length=500)
    ] = None
    nodata: Annotated[str | None, Query(description="Nodata value to mask")] = None
    rescale: Annotated[
        list[str] | None, Query(description="`min,max` per band (repeat for several bands)")
    ] = None
    colormap_name: Annotated[
        str | None, Query(description="A rio-tiler colormap name, e.g. `viridis`")
    ] = None
    colormap: Annotated[
        str | None, Query(description='JSON `{"0": "#0000ff", ...}` or intervals', max_length=20000)
    ] = None
    resampling: Annotated[str | None, Query(description="Resampling method, e.g. `bilinear`")] = (
        None
    )
    return_mask: Annotated[bool | None, Query(description="Add the mask as alpha")] = None
    buffer: Annotated[float | None, Query(description="Pixels added around the tile")] = None
    tilesize: Annotated[int | None, Query(description="Output tile size in pixels")] = None

    def raw(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for key in RENDER_KEYS:
            value = getattr(self, key)
            if value is None:
                continue
            if key == "bidx":
                value = ",".join(value)
            values[key] = value
        return values

    def params(self, defaults: Mapping[str, Any] | None = None) -> RenderParams:
        """The parsed parameters; `defaults` (e.g. a layer's tileParams) sit under the query."""
        merged = {k: v for k, v in (defaults or {}).items() if k in RENDER_KEYS}
        query = self.raw()
        if "colormap" in query:
            merged.pop("colormap_name", None)
        if "colormap_name" in query:
            merged.pop("colormap", None)
        if "expression" in query:
            merged.pop("bidx", None)
        if "bidx" in query:
            merged.pop("expression", None)
        merged.update(query)
        return parse_render_params(merged)


async def render_query(**values: Any) -> RenderQuery:
    """`RenderQuery` as an `async` dependency: FastAPI runs a class or a plain function in
    its thread pool, a thread hop per request for what is a few attribute reads."""
    return RenderQuery(**values)


render_query.__signature__ = inspect.signature(RenderQuery)  # type: ignore[attr-defined]
RenderQueryDep = Annotated[RenderQuery, Depends(render_query)]
