"""Imports: habitat CSVs and species files by admin upload and by `worldbase import`; bad
rows reported with line numbers, all or nothing per file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.apps.habitats.conftest import World, collection, point, square
from tests.builders import assert_error

HABITATS_CSV = """name,iucn_code,ecosystem_type,color_hex,geometry
Temperate Forest,1.4,forest,#2E7D32,
Arable Land,14.1,artificial,,
Peat bog,5.4.1,wetland,#5B8DB8,"POLYGON ((10 50, 11 50, 11 51, 10 51, 10 50))"
Urban,1405,artificial,#B71C1C,"{""type"": ""Point"", ""coordinates"": [13.4, 52.5]}"
"""
SPECIES_CSV = """name,scientific_name,habitat_types,geometry,observed_at
European Badger,Meles meles,1.4;4.4,"POLYGON ((10 50, 11 50, 11 51, 10 51, 10 50))",
European Badger,Meles meles,,POINT (10.5 50.5),2024-05-01
Lion,Panthera leo,2.1|4.4,,
"""


def _upload(world: World, path: str, name: str, content: bytes, who: str = "admin") -> Any:
    return world.client.post(path, files={"file": (name, content)}, headers=world.as_(who))


@pytest.mark.parametrize("who", ["user", "other", "anonymous", "admin"])
def test_habitat_csv_upload_is_for_admins(world: World, who: str) -> None:
    response = _upload(world, "/habitats/import", "h.csv", HABITATS_CSV.encode(), who)
    if who != "admin":
        assert_error(response, 401 if who == "anonymous" else 403)
        assert world.client.get("/habitats").json()["total"] == 0
        return
    assert response.status_code == 201, response.text
    assert response.json() == {"kind": "habitats", "created": 4, "features": 0}
    items = {h["iucn_code"]: h for h in world.client.get("/habitats").json()["items"]}
    assert items["14.1"]["raster_value"] == 1401 and items["14.1"]["color_hex"] == "#E34A33"
    assert items["5.4.1"]["geometry"]["type"] == "Polygon"
    assert items["1405"]["geometry"] == {"type": "Point", "coordinates": [13.4, 52.5]}


@pytest.mark.parametrize(
    ("content", "code", "needle"),
    [
        ("name,ecosystem_type\nForest,forest\n", 422, "missing column"),
        ("name,iucn_code,colour\nForest,1.4,red\n", 422, "unknown column"),
        ("name,iucn_code\nForest,1.4\nBad,99.9\n", 422, "line 3"),
        ("name,iucn_code\nForest,1.4\nAgain,1.4\n", 422, "repeats line 2"),
        ("name,iucn_code,geometry\nForest,1.4,POLYGON ((0 0\n", 422, "line 2"),
        ("name,iucn_code,color_hex\nForest,1.4,#GGGGGG\n", 422, "line 2"),
        ("name,iucn_code\n", 422, "no rows"),
        ("name,iucn_code\nForest,1.4,extra\n", 422, "line 2"),
    ],
)
def test_bad_habitat_csv_writes_nothing(world: World, content: str, code: int, needle: str) -> None:
    body = assert_error(_upload(world, "/habitats/import", "h.csv", content.encode()), code)
    assert needle in body["message"]
    assert world.client.get("/habitats").json()["total"] == 0


def test_every_bad_line_is_reported_and_existing_codes_conflict(world: World) -> None:
    content = "name,iucn_code\nA,1.4\nB,nope\nC,1.5\nD,77\n"
    body = assert_error(_upload(world, "/habitats/import", "h.csv", content.encode()), 422)
    assert [e["line"] for e in body["detail"]["errors"]] == [3, 5]
    world.habitat(iucn_code="1.5", name="Dry forest")
    content = "name,iucn_code\nA,1.4\nC,1.5\n"
    body = assert_error(_upload(world, "/habitats/import", "h.csv", content.encode()), 409)
    assert body["detail"]["errors"][0]["line"] == 3
    assert world.client.get("/habitats").json()["total"] == 1


def test_species_csv_groups_rows_by_name(world: World) -> None:
    response = _upload(world, "/species/import", "s.csv", SPECIES_CSV.encode())
    assert response.status_code == 201, response.text
    assert response.json() == {"kind": "species", "created": 2, "features": 2}
    items = {s["name"]: s for s in world.client.get("/species").json()["items"]}
    badger = items["European Badger"]
    assert badger["habitat_types"] == ["1.4", "4.4"] and badger["occurrence_count"] == 2
    assert items["Lion"]["habitat_types"] == ["2.1", "4.4"]
    features = world.client.get(badger["occurrences_url"], headers=world.as_("user")).json()
    assert features["features"][1]["properties"] == {"observed_at": "2024-05-01"}
    info = world.client.get("/api/location_info/", params={"lon": 10.2, "lat": 50.2})
    assert info.status_code in (200, 503)  # no raster in this module's storage is fine


def test_species_geojson_with_red_list_columns(world: World) -> None:
    data = collection(
        square(10, 50, binomial="Meles meles", habitat_types="1.4"),
        point(10.5, 50.5, sci_name="Meles meles", count=3),
        square(20, 0, name="Lion", scientific_name="Panthera leo"),
    )
    response = _upload(world, "/species/import", "s.geojson", json.dumps(data).encode())
    assert response.status_code == 201, response.text
    assert response.json()["created"] == 2 and response.json()["features"] == 3
    names = sorted(s["scientific_name"] for s in world.client.get("/species").json()["items"])
    assert names == ["Meles meles", "Panthera leo"]


@pytest.mark.parametrize(
    ("content", "code", "needle"),
    [
        ("scientific_name\nMeles meles\n", 422, "missing column"),
        ("name,geometry\nBadger,POINT (1 1)\nFox,POINT (500 1)\n", 422, "line 3"),
        ("name,geometry\nBadger,not wkt\n", 422, "line 2"),
        ("name,habitat_types\nBadger,[1.4\n", 422, "line 2"),
        (json.dumps(collection(point(1, 1))), 422, "feature 1"),
    ],
)
def test_bad_species_files_write_nothing(
    world: World, content: str, code: int, needle: str
) -> None:
    body = assert_error(_upload(world, "/species/import", "s.csv", content.encode()), code)
    assert needle in body["message"]
    assert world.client.get("/species").json()["total"] == 0


def test_existing_species_name_conflicts(world: World) -> None:
    world.species(name="European Badger")
    body = assert_error(_upload(world, "/species/import", "s.csv", SPECIES_CSV.encode()), 409)
    assert body["detail"]["errors"][0]["at"] == "line 2"
    assert world.client.get("/species").json()["total"] == 1


# --- The CLI ---------------------------------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WORLDBASE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("JWT_SECRET", "cli-secret-" + "x" * 40)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_cli_imports_habitats_and_species(env: Path) -> None:
    from worldbase.cli import app

    (env / "h.csv").write_text(HABITATS_CSV)
    (env / "s.csv").write_text(SPECIES_CSV)
    result = CliRunner().invoke(app, ["import", "habitats", str(env / "h.csv")])
    assert result.exit_code == 0, result.output
    assert "imported 4 habitats" in result.output
    result = CliRunner().invoke(app, ["import", "species", str(env / "s.csv")])
    assert result.exit_code == 0, result.output
    assert "imported 2 species, 2 features" in result.output
    again = CliRunner().invoke(app, ["import", "habitats", str(env / "h.csv")])
    assert again.exit_code == 1 and "already exists" in again.output
    (env / "bad.csv").write_text("name,iucn_code\nA,1.9\nB,x\nC,y\n")
    bad = CliRunner().invoke(app, ["import", "habitats", str(env / "bad.csv")])
    assert bad.exit_code == 1
    assert "line 3" in bad.output and "line 4" in bad.output


@pytest.mark.parametrize("who", ["user", "other", "anonymous", "game"])
def test_species_upload_is_for_admins(world: World, who: str) -> None:
    response = _upload(world, "/species/import", "s.csv", SPECIES_CSV.encode(), who)
    assert_error(response, 401 if who == "anonymous" else 403)
    assert world.client.get("/species").json()["total"] == 0
