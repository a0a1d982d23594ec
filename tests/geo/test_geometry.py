"""GeoJSON validation: every kind of bad input is a BadInput (422) with a precise reason."""

from __future__ import annotations

from typing import Any

import pytest
from shapely.geometry import MultiPolygon, Point, Polygon, box

from worldbase.core.errors import BadInput
from worldbase.geo.geometry import (
    parse_bbox,
    parse_feature,
    parse_feature_collection,
    parse_geojson_geometry,
    to_geojson,
)

SQUARE = [[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]
CLOCKWISE = [[0, 0], [0, 1], [1, 1], [1, 0], [0, 0]]

VALID = [
    {"type": "Point", "coordinates": [12.5, 41.9]},
    {"type": "Point", "coordinates": [-180, -90, 120.5]},  # altitude accepted, dropped
    {"type": "MultiPoint", "coordinates": [[0, 0], [1, 1]]},
    {"type": "LineString", "coordinates": [[0, 0], [1, 1], [2, 0]]},
    {"type": "MultiLineString", "coordinates": [[[0, 0], [1, 1]], [[2, 2], [3, 3]]]},
    {"type": "Polygon", "coordinates": [SQUARE]},
    {
        "type": "Polygon",
        "coordinates": [
            [[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]],
            [[2, 2], [2, 4], [4, 4], [4, 2], [2, 2]],
        ],
    },
    {"type": "MultiPolygon", "coordinates": [[SQUARE], [[[5, 5], [6, 5], [6, 6], [5, 5]]]]},
    {
        "type": "GeometryCollection",
        "geometries": [
            {"type": "Point", "coordinates": [0, 0]},
            {"type": "LineString", "coordinates": [[0, 0], [1, 1]]},
        ],
    },
]


@pytest.mark.parametrize("obj", VALID, ids=lambda o: o["type"])
def test_valid_geometries_round_trip(obj: dict[str, Any]) -> None:
    geom = parse_geojson_geometry(obj)
    assert geom.is_valid and not geom.has_z
    again = parse_geojson_geometry(to_geojson(geom))
    assert again.equals(geom)
    assert to_geojson(geom)["type"] == obj["type"]


def test_winding_is_normalised_to_the_right_hand_rule() -> None:
    geom = parse_geojson_geometry({"type": "Polygon", "coordinates": [CLOCKWISE]})
    assert isinstance(geom, Polygon)
    assert geom.exterior.is_ccw
    holed = parse_geojson_geometry(
        {
            "type": "MultiPolygon",
            "coordinates": [
                [
                    [[0, 0], [0, 10], [10, 10], [10, 0], [0, 0]],  # clockwise shell
                    [[2, 2], [4, 2], [4, 4], [2, 4], [2, 2]],  # counter-clockwise hole
                ]
            ],
        }
    )
    assert isinstance(holed, MultiPolygon)
    polygon = holed.geoms[0]
    assert polygon.exterior.is_ccw and not polygon.interiors[0].is_ccw
    assert to_geojson(geom)["coordinates"][0] == [
        [0.0, 0.0],
        [1.0, 0.0],
        [1.0, 1.0],
        [0.0, 1.0],
        [0.0, 0.0],
    ]


INVALID: list[tuple[Any, str, str]] = [
    ([1, 2], "must be a JSON object", ""),
    ({"coordinates": [0, 0]}, "missing 'type'", ""),
    ({"type": "Circle", "coordinates": [0, 0]}, "unknown geometry type 'Circle'", "type"),
    ({"type": "Feature", "geometry": None}, "expected a geometry, got a Feature", ""),
    ({"type": "Point"}, "missing 'coordinates'", ""),
    ({"type": "Point", "coordinates": [1]}, "2 or 3 numbers", "coordinates"),
    ({"type": "Point", "coordinates": [1, 2, 3, 4]}, "2 or 3 numbers", "coordinates"),
    ({"type": "Point", "coordinates": "1,2"}, "2 or 3 numbers", "coordinates"),
    ({"type": "Point", "coordinates": [1, "2"]}, "must be numbers", "coordinates[1]"),
    ({"type": "Point", "coordinates": [True, 2]}, "must be numbers", "coordinates[0]"),
    ({"type": "Point", "coordinates": [float("nan"), 2]}, "finite", "coordinates[0]"),
    ({"type": "Point", "coordinates": [1, float("inf")]}, "finite", "coordinates[1]"),
    ({"type": "Point", "coordinates": [180.5, 0]}, "longitude 180.5", "coordinates[0]"),
    ({"type": "Point", "coordinates": [0, -91]}, "latitude -91.0", "coordinates[1]"),
    ({"type": "LineString", "coordinates": [[0, 0]]}, "at least 2 positions", "coordinates"),
    ({"type": "LineString", "coordinates": [[0, 0], [0, 0]]}, "Too few points", ""),
    ({"type": "MultiPoint", "coordinates": []}, "at least 1 positions", "coordinates"),
    ({"type": "MultiLineString", "coordinates": []}, "empty MultiLineString", "coordinates"),
    ({"type": "Polygon", "coordinates": []}, "no rings", "coordinates"),
    (
        {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]},
        "at least 4",
        "coordinates[0]",
    ),
    (
        {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]},
        "not closed",
        "coordinates[0]",
    ),
    (
        {"type": "Polygon", "coordinates": [[[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]]},
        "Self-intersection",
        "",
    ),
    (
        {
            "type": "Polygon",
            "coordinates": [SQUARE, [[5, 5], [6, 5], [6, 6], [5, 5]]],  # hole outside the shell
        },
        "Hole lies outside shell",
        "",
    ),
    (
        {
            "type": "MultiPolygon",
            "coordinates": [[SQUARE], [[[0.5, 0.5], [2, 0.5], [2, 2], [0.5, 0.5]]]],
        },
        "Self-intersection",
        "",
    ),
    (
        {"type": "MultiPolygon", "coordinates": [[[[0, 0], [1, 0]]]]},
        "at least 4",
        "coordinates[0][0]",
    ),
    ({"type": "GeometryCollection", "geometries": []}, "empty geometry collection", "geometries"),
    (
        {"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [0, 99]}]},
        "latitude 99.0",
        "geometries[0].coordinates[1]",
    ),
]


@pytest.mark.parametrize(("obj", "reason", "path"), INVALID)
def test_invalid_geometries_say_why(obj: Any, reason: str, path: str) -> None:
    with pytest.raises(BadInput) as caught:
        parse_geojson_geometry(obj)
    error = caught.value
    assert error.status_code == 422
    assert reason in error.detail["reason"]
    assert error.detail["path"] == path
    assert reason in error.message


def test_nested_collections_are_bounded() -> None:
    obj: dict[str, Any] = {"type": "Point", "coordinates": [0, 0]}
    for _ in range(5):
        obj = {"type": "GeometryCollection", "geometries": [obj]}
    with pytest.raises(BadInput, match="nested too deeply"):
        parse_geojson_geometry(obj)


def test_vertex_limit() -> None:
    line = {"type": "LineString", "coordinates": [[i * 0.001, 0] for i in range(101)]}
    assert parse_geojson_geometry(line, max_vertices=101).length > 0
    with pytest.raises(BadInput, match="more than 100 positions"):
        parse_geojson_geometry(line, max_vertices=100)


def test_features() -> None:
    feature = {
        "type": "Feature",
        "id": "a-1",
        "geometry": {"type": "Point", "coordinates": [1, 2]},
        "properties": {"name": "x"},
    }
    geometry, properties, feature_id = parse_feature(feature)
    assert geometry == Point(1, 2) and properties == {"name": "x"} and feature_id == "a-1"
    unlocated = {"type": "Feature", "geometry": None, "properties": None}
    assert parse_feature(unlocated, allow_null_geometry=True) == (None, {}, None)
    with pytest.raises(BadInput, match="feature has no geometry"):
        parse_feature(unlocated)
    for bad, reason in [
        ({"type": "Point", "coordinates": [0, 0]}, "type 'Feature'"),
        ({"type": "Feature", "properties": {}}, "must have a 'geometry' field"),
        ({**feature, "properties": [1]}, "'properties' must be an object"),
        ({**feature, "id": {"x": 1}}, "'id' must be a string or a number"),
        ({**feature, "id": True}, "'id' must be a string or a number"),
    ]:
        with pytest.raises(BadInput, match=reason):
            parse_feature(bad)


def test_feature_collections_point_at_the_bad_feature() -> None:
    good = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [0, 0]},
        "properties": {},
    }
    bad = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [0, 95]},
        "properties": {},
    }
    collection = {"type": "FeatureCollection", "features": [good, good, bad]}
    with pytest.raises(BadInput) as caught:
        parse_feature_collection(collection)
    assert caught.value.detail["path"] == "features[2].geometry.coordinates[1]"
    assert (
        len(parse_feature_collection({"type": "FeatureCollection", "features": [good, good]})) == 2
    )
    with pytest.raises(BadInput, match="more than 1 features"):
        parse_feature_collection(
            {"type": "FeatureCollection", "features": [good, good]}, max_features=1
        )
    with pytest.raises(BadInput, match="'features' must be an array"):
        parse_feature_collection({"type": "FeatureCollection", "features": {}})
    with pytest.raises(BadInput, match="FeatureCollection"):
        parse_feature_collection(good)
    # the vertex budget covers the whole collection
    with pytest.raises(BadInput, match="positions"):
        parse_feature_collection(
            {"type": "FeatureCollection", "features": [good] * 3}, max_vertices=2
        )


def test_parse_bbox() -> None:
    assert parse_bbox("-10.5, -5,10,5") == (-10.5, -5.0, 10.0, 5.0)
    assert parse_bbox("1,1,1,1") == (1.0, 1.0, 1.0, 1.0)
    for bad, reason in [
        ("1,2,3", "4 comma-separated"),
        ("1,2,3,4,5", "4 comma-separated"),
        ("a,2,3,4", "must be numbers"),
        ("nan,2,3,4", "finite"),
        ("1,2,inf,4", "finite"),
        ("-181,0,0,1", "longitudes"),
        ("0,-91,1,1", "latitudes"),
        ("5,0,1,1", "minimum exceeds maximum"),
        ("0,5,1,1", "minimum exceeds maximum"),
    ]:
        with pytest.raises(BadInput, match=reason) as caught:
            parse_bbox(bad)
        assert caught.value.detail["path"] == "bbox"


def test_to_geojson_is_plain_json() -> None:
    assert to_geojson(box(0, 0, 1, 1)) == {
        "type": "Polygon",
        "coordinates": [[[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0], [1.0, 0.0]]],
    }
