"""A MapLibre style (v8) for a map: a basemap, then its visible layers in display order.

Vector layers are `vector` sources from the layer's TileJSON with a fill, a line and a
circle style layer each (filtered by geometry type, so any mix renders); WMS layers are
`raster` sources with a GetMap URL template (`{bbox-epsg-3857}`); GeoTIFF layers are
`raster` sources on their TiTiler server when one is configured, else on this server's
`/api/layers/{id}/tiles/{z}/{x}/{y}`. Each layer's map opacity multiplies its style.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlencode

from worldbase.apps.samsyn.models import Layer, Map, MapLayer, SourceType

BASEMAPS: dict[str, tuple[list[str], str]] = {
    "osm": (
        ["https://tile.openstreetmap.org/{z}/{x}/{y}.png"],
        "© OpenStreetMap contributors",
    ),
    "carto-light": (
        ["https://basemaps.cartocdn.com/light_all/{z}/{x}/{y}.png"],
        "© OpenStreetMap contributors © CARTO",
    ),
    "carto-dark": (
        ["https://basemaps.cartocdn.com/dark_all/{z}/{x}/{y}.png"],
        "© OpenStreetMap contributors © CARTO",
    ),
    "satellite": (
        [
            "https://server.arcgisonline.com/ArcGIS/rest/services/World_Imagery/MapServer/tile/{z}/{y}/{x}"
        ],
        "Esri, Maxar, Earthstar Geographics",
    ),
    "ocean": (
        [
            "https://server.arcgisonline.com/ArcGIS/rest/services/Ocean/World_Ocean_Base/MapServer/tile/{z}/{y}/{x}"
        ],
        "Esri, GEBCO, NOAA, National Geographic",
    ),
}
_COLOR = re.compile(r"^#([0-9a-fA-F]{3}|[0-9a-fA-F]{4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")


def _basemap(basemap: str | None) -> tuple[list[str], str] | None:
    if not basemap or basemap == "none":
        return None
    if basemap.startswith(("http://", "https://")) and "{z}" in basemap:
        return [basemap], ""
    # Mapbox style names ("mapbox://styles/mapbox/satellite-v9") pick the closest raster.
    key = basemap.rsplit("/", 1)[-1].lower()
    for name, value in BASEMAPS.items():
        if name in key:
            return value
    if "dark" in key:
        return BASEMAPS["carto-dark"]
    if "light" in key:
        return BASEMAPS["carto-light"]
    return BASEMAPS["osm"]


def _color(value: Any, default: str) -> str:
    return value if isinstance(value, str) and _COLOR.match(value) else default


def _number(value: Any, default: float, low: float, high: float) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(min(max(value, low), high))
    return default


def _vector_layers(layer: Layer, source: str, opacity: float) -> list[dict[str, Any]]:
    style = layer.style_config or {}
    stroke = _color(style.get("stroke"), "#3b82f6")
    fill = _color(style.get("fill"), "#3b82f633")
    fill_opacity = _number(style.get("fillOpacity"), 1.0, 0, 1) * opacity
    width = _number(style.get("strokeWidth"), 2.0, 0, 50)
    radius = _number(style.get("pointSize"), 6.0, 0, 100)
    base = {"source": source, "source-layer": "features"}
    polygon = ["==", ["geometry-type"], "Polygon"]
    line = ["any", ["==", ["geometry-type"], "LineString"], polygon]
    return [
        {
            "id": f"{source}-fill",
            "type": "fill",
            **base,
            "filter": polygon,
            "paint": {"fill-color": fill, "fill-opacity": fill_opacity},
        },
        {
            "id": f"{source}-line",
            "type": "line",
            **base,
            "filter": line,
            "paint": {"line-color": stroke, "line-width": width, "line-opacity": opacity},
        },
        {
            "id": f"{source}-circle",
            "type": "circle",
            **base,
            "filter": ["==", ["geometry-type"], "Point"],
            "paint": {
                "circle-color": stroke,
                "circle-radius": radius,
                "circle-opacity": opacity,
                "circle-stroke-color": "#ffffff",
                "circle-stroke-width": 1,
            },
        },
    ]


def _wms_tiles(config: dict[str, Any]) -> list[str]:
    version = config.get("version", "1.3.0")
    params = {
        "SERVICE": "WMS",
        "REQUEST": "GetMap",
        "VERSION": version,
        "LAYERS": config.get("layers", ""),
        "STYLES": config.get("styles", ""),
        "FORMAT": config.get("format", "image/png"),
        "TRANSPARENT": "TRUE" if config.get("transparent", True) else "FALSE",
        "WIDTH": "256",
        "HEIGHT": "256",
        ("CRS" if version == "1.3.0" else "SRS"): "EPSG:3857",
    }
    for key, value in (config.get("dimensions") or {}).items():
        params[str(key).upper()] = str(value)
    separator = "&" if "?" in config["url"] else "?"
    # The placeholder must stay literal: MapLibre replaces it per tile.
    return [f"{config['url']}{separator}{urlencode(params)}&BBOX={{bbox-epsg-3857}}"]


def _geotiff_tiles(layer: Layer, base_url: str) -> list[str]:
    config = layer.source_config or {}
    server, cog = config.get("tileServer"), config.get("cogUrl") or config.get("url")
    tiles = (config.get("delivery") or "tiles") == "tiles"
    if tiles and server and cog and not config.get("cogUrlTemplate"):
        params = {"url": cog, **{k: str(v) for k, v in (config.get("tileParams") or {}).items()}}
        query = urlencode(params, safe="", quote_via=quote)
        return [f"{server.rstrip('/')}/cog/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}?{query}"]
    return [f"{base_url}/api/layers/{layer.id}/tiles/{{z}}/{{x}}/{{y}}"]


def _bounds(config: dict[str, Any]) -> list[float] | None:
    bounds = config.get("bounds")
    try:
        (minx, miny), (maxx, maxy) = bounds  # type: ignore[misc]
        return [float(minx), max(float(miny), -85.0511), float(maxx), min(float(maxy), 85.0511)]
    except (TypeError, ValueError):
        return None


def build_style(
    map_: Map, layers: list[tuple[MapLayer, Layer]], *, base_url: str
) -> dict[str, Any]:
    sources: dict[str, Any] = {}
    style_layers: list[dict[str, Any]] = []
    basemap = _basemap(map_.basemap)
    if basemap is not None:
        tiles, attribution = basemap
        sources["basemap"] = {"type": "raster", "tiles": tiles, "tileSize": 256, "maxzoom": 19}
        if attribution:
            sources["basemap"]["attribution"] = attribution
        style_layers.append({"id": "basemap", "type": "raster", "source": "basemap"})
    else:
        style_layers.append(
            {"id": "background", "type": "background", "paint": {"background-color": "#dfe9f3"}}
        )
    for item, layer in layers:
        if not item.is_visible:
            continue
        source = f"layer-{layer.id}"
        opacity = float(item.opacity)
        config = layer.source_config or {}
        if layer.source_type == SourceType.vector:
            sources[source] = {
                "type": "vector",
                "url": f"{base_url}/api/layers/{layer.id}/tilejson.json",
            }
            style_layers += _vector_layers(layer, source, opacity)
            continue
        if layer.source_type == SourceType.wms and not config.get("layers"):
            continue  # a draft: no WMS layer named yet, nothing to draw
        tiles = (
            _wms_tiles(config)
            if layer.source_type == SourceType.wms
            else _geotiff_tiles(layer, base_url)
        )
        raster: dict[str, Any] = {"type": "raster", "tiles": tiles, "tileSize": 256}
        bounds = _bounds(config)
        if bounds is not None:
            raster["bounds"] = bounds
        sources[source] = raster
        style_layers.append(
            {"id": source, "type": "raster", "source": source, "paint": {"raster-opacity": opacity}}
        )
    return {
        "version": 8,
        "name": map_.name,
        "metadata": {"samsyn:map_id": str(map_.id), "samsyn:basemap": map_.basemap},
        "center": [map_.center_lng, map_.center_lat],
        "zoom": map_.zoom,
        "sources": sources,
        "layers": style_layers,
    }
