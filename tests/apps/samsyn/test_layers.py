"""Layers: the library, source_config per source type, and who may change a layer."""

from __future__ import annotations

from tests.apps.samsyn.conftest import CALLERS, WMS_CONFIG, Team
from tests.builders import assert_error

GEOTIFF_TILES = {
    "delivery": "tiles",
    "tileServer": "https://titiler.example.org",
    "cogUrlTemplate": "https://storage.example.org/sst/{year}/{month}/sst_{YYYYMM}.tif",
    "bounds": [[2.0, 51.0], [8.0, 56.0]],
    "temporal": {
        "enabled": True,
        "start": "2020-01-01",
        "end": "2024-12-31",
        "resolution": "monthly",
    },
    "tileParams": {"rescale": "0,30", "colormap_name": "thermal"},
}


def test_library_filters_and_visibility(team: Team) -> None:
    team.create_layer(
        name="Sea temperature",
        source_type="wms",
        category="oceanography",
        is_global=True,
        source_config=WMS_CONFIG,
    )
    team.create_layer(
        name="Bathymetry",
        source_type="geotiff",
        category="bathymetry",
        is_global=True,
        source_config={"delivery": "direct", "url": "https://example.org/b.tif"},
    )
    team.create_layer("stranger", name="Stranger's zones", description="secret fishing spots")

    def names(who: str, query: str = "") -> list[str]:
        response = team.client.get(f"/api/layers{query}", headers=team.as_(who))
        assert response.status_code == 200, response.text
        return [item["name"] for item in response.json()["items"]]

    assert names("anonymous") == ["Bathymetry", "Sea temperature"]
    assert names("stranger") == ["Bathymetry", "Sea temperature", "Stranger's zones"]
    assert names("admin") == ["Bathymetry", "Sea temperature", "Stranger's zones"]
    assert names("owner", "?source_type=wms") == ["Sea temperature"]
    assert names("owner", "?category=Bathymetry") == ["Bathymetry"]
    assert names("owner", "?q=TEMP") == ["Sea temperature"]
    assert names("stranger", "?q=fishing") == ["Stranger's zones"]
    assert names("stranger", "?is_global=false") == ["Stranger's zones"]
    assert names("owner", "?q=100%25") == []
    assert_error(team.client.get("/api/layers?source_type=shapefile"), 422)


def test_layer_in_a_map_is_readable_by_the_map_readers(team: Team) -> None:
    map_ = team.shared_map()
    layer = team.create_layer()
    url = f"/api/layers/{layer['id']}"
    assert_error(team.client.get(url, headers=team.as_("viewer")), 404)
    team.add_layer(map_["id"], layer["id"])
    expected = {
        "owner": 200,
        "editor": 200,
        "viewer": 200,
        "stranger": 404,
        "anonymous": 404,
        "admin": 200,
    }
    for who, code in expected.items():
        assert team.client.get(url, headers=team.as_(who)).status_code == code, who


def test_update_and_delete_layer_by_role(team: Team) -> None:
    for who in CALLERS:
        _update_and_delete_layer_by_role(team, who)


def _update_and_delete_layer_by_role(team: Team, who: str) -> None:
    map_ = team.shared_map()
    layer = team.create_layer(editable="everyone")
    team.add_layer(map_["id"], layer["id"])
    code = {"owner": 200, "admin": 200, "anonymous": 401, "stranger": 404}.get(who, 403)
    response = team.client.put(
        f"/api/layers/{layer['id']}", json={"name": "New"}, headers=team.as_(who)
    )
    assert response.status_code == code, response.text
    if code != 200:
        assert_error(response, code)
    response = team.client.delete(f"/api/layers/{layer['id']}", headers=team.as_(who))
    assert response.status_code == (204 if code == 200 else code)
    if code == 200:
        assert (
            team.client.get(f"/api/maps/{map_['id']}", headers=team.as_("owner")).json()["layers"]
            == []
        )


def test_source_config_is_validated_per_type(team: Team) -> None:
    wms = team.create_layer(
        source_type="wms",
        source_config=WMS_CONFIG
        | {
            "temporal": {
                "enabled": True,
                "start": "2020-01-01T00:00:00Z",
                "end": "2024-12-31T23:59:59Z",
                "resolution": "daily",
            },
            "dimensions": {"ELEVATION": "-0.5"},
            "attribution": "CMEMS",
        },
    )
    assert wms["source_config"]["temporal"]["parameter"] == "TIME"
    assert wms["source_config"]["attribution"] == "CMEMS"  # unknown keys are kept
    geotiff = team.create_layer(source_type="geotiff", source_config=GEOTIFF_TILES)
    assert geotiff["source_config"]["cogUrlTemplate"].endswith("sst_{YYYYMM}.tif")
    vector = team.create_layer(source_config={"featureCount": 99, "note": "x"})
    assert vector["source_config"]["featureCount"] == 0 and vector["source_config"]["note"] == "x"
    bad = [
        ("wms", {"layers": "x"}),  # no url
        ("wms", WMS_CONFIG | {"url": "ftp://example.org"}),
        ("wms", WMS_CONFIG | {"version": "2.0"}),
        (
            "wms",
            WMS_CONFIG
            | {"temporal": {"enabled": True, "start": "2024-01-01", "end": "2020-01-01"}},
        ),
        ("geotiff", {"delivery": "direct"}),
        ("geotiff", {"delivery": "stream", "url": "https://example.org/a.tif"}),
        ("geotiff", GEOTIFF_TILES | {"bounds": [[8.0, 51.0], [2.0, 56.0]]}),
        ("geotiff", GEOTIFF_TILES | {"bounds": [[2.0, 51.0], [8.0, 96.0]]}),
        ("geotiff", GEOTIFF_TILES | {"temporal": {"enabled": False}}),
        ("geotiff", GEOTIFF_TILES | {"cogUrlTemplate": "https://example.org/no-date.tif"}),
    ]
    for source_type, config in bad:
        response = team.client.post(
            "/api/layers",
            json={"name": "bad", "source_type": source_type, "source_config": config},
            headers=team.as_("owner"),
        )
        body = assert_error(response, 422)
        assert body["detail"][0]["loc"][0] == "source_config", body
    assert_error(team.client.post("/api/layers", json={"name": "x", "source_type": "vector"}), 401)
    # Updates are validated the same way, and the source type is fixed.
    url = f"/api/layers/{wms['id']}"
    assert_error(
        team.client.put(url, json={"source_config": {"layers": "x"}}, headers=team.as_("owner")),
        422,
    )
    assert_error(
        team.client.put(url, json={"source_type": "vector"}, headers=team.as_("owner")), 422
    )
    assert (
        team.client.get(url, headers=team.as_("owner")).json()["source_config"]["layers"]
        == WMS_CONFIG["layers"]
    )
    total = team.client.get("/api/layers", headers=team.as_("owner")).json()["total"]
    assert total == 3


def test_samsyns_own_spellings_of_temporal_and_bounds_are_taken(team: Team) -> None:
    # SamSyn's frontend sends `temporal: true` with the WMS's time extent, and a GeoTIFF's
    # bounds as titiler's flat [west, south, east, north].
    wms = team.create_layer(
        source_type="wms",
        source_config=WMS_CONFIG
        | {
            "temporal": True,
            "timeDimension": {"extent": "2024-01-01/2024-06-01/P1M", "default": "2024-01-01"},
        },
    )
    temporal = wms["source_config"]["temporal"]
    assert temporal["enabled"] and temporal["resolution"] == "monthly", temporal
    assert temporal["start"].startswith("2024-01-01") and temporal["end"].startswith("2024-06-01")
    geotiff = team.create_layer(
        source_type="geotiff",
        source_config={
            "delivery": "direct",
            "url": "https://example.org/rings.tif",
            "bounds": [2.0, 51.0, 8.0, 56.0],
        },
    )
    assert geotiff["source_config"]["bounds"] == [[2.0, 51.0], [8.0, 56.0]]
    plain = team.create_layer(source_type="wms", source_config=WMS_CONFIG | {"temporal": False})
    assert "temporal" not in plain["source_config"] or not plain["source_config"]["temporal"]
    for bounds in ([8.0, 51.0, 2.0, 56.0], [2.0, 51.0, 8.0, 96.0], [2.0, "x", 8.0, 56.0]):
        response = team.client.post(
            "/api/layers",
            json={
                "name": "bad",
                "source_type": "geotiff",
                "source_config": {"delivery": "direct", "url": "https://example.org/a.tif"}
                | {"bounds": bounds},
            },
            headers=team.as_("owner"),
        )
        assert_error(response, 422)


def test_vector_stats_survive_a_config_update(team: Team) -> None:
    layer = team.create_layer()
    from tests.apps.samsyn.conftest import feature

    team.add_features(layer["id"], feature(name="a"))
    response = team.client.put(
        f"/api/layers/{layer['id']}",
        json={"source_config": {"featureCount": 0, "note": "n"}, "metadata": {"doi": "10.1/x"}},
        headers=team.as_("owner"),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["source_config"]["featureCount"] == 1 and body["source_config"]["note"] == "n"
    assert body["metadata"] == {"doi": "10.1/x"}
