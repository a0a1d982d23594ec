"""Species: CRUD with admin-only writes, occurrence data stored per feature, occurrences by
bbox with paging (signed-in callers only), bad input."""

from __future__ import annotations

from typing import Any

import pytest

from tests.apps.habitats.conftest import World, collection, game_token, point, square
from tests.builders import assert_error


def _occurrences(world: World, species_id: int, who: str = "user", **params: Any) -> Any:
    return world.client.get(
        f"/species/{species_id}/occurrences", params=params, headers=world.as_(who)
    )


def test_create_with_occurrence_data(world: World) -> None:
    data = collection(point(10.5, 50.5, count=2), square(10, 50, kind="range"))
    species = world.species(habitat_types=["1.4", "4.4"], occurrence_data=data)
    assert species["occurrence_count"] == 2
    assert species["habitat_types"] == ["1.4", "4.4"]
    assert species["occurrences_url"].endswith(f"/species/{species['id']}/occurrences")
    body = _occurrences(world, species["id"]).json()
    assert body["type"] == "FeatureCollection"
    assert [f["geometry"]["type"] for f in body["features"]] == ["Point", "Polygon"]
    assert body["features"][0]["properties"] == {"count": 2}
    assert body["numberMatched"] == 2 and body["numberReturned"] == 2


@pytest.mark.parametrize("who", ["user", "other", "anonymous", "admin", "game"])
def test_reads_writes_and_occurrences_per_caller(world: World, who: str) -> None:
    species = world.species(occurrence_data=collection(point(1, 1)))
    sid = species["id"]
    assert world.client.get("/species", headers=world.as_(who)).json()["total"] == 1
    assert world.client.get(f"/species/{sid}", headers=world.as_(who)).json() == species
    occurrences = _occurrences(world, sid, who)
    if who == "anonymous":
        assert_error(occurrences, 401)
    else:
        assert occurrences.status_code == 200
        assert occurrences.headers["content-type"].startswith("application/geo+json")
    created = world.client.post("/species", json={"name": "Fox"}, headers=world.as_(who))
    updated = world.client.put(f"/species/{sid}", json={"name": "B"}, headers=world.as_(who))
    deleted = world.client.delete(f"/species/{sid}", headers=world.as_(who))
    if who == "admin":
        assert created.status_code == 201
        assert updated.status_code == 200 and updated.json()["name"] == "B"
        assert deleted.status_code == 204
        assert_error(world.client.get(f"/species/{sid}"), 404)
        assert_error(_occurrences(world, sid), 404)
        return
    expected = 401 if who == "anonymous" else 403
    for response in (created, updated, deleted):
        assert_error(response, expected)
    assert world.client.get(f"/species/{sid}").json() == species


def test_occurrences_by_bbox_and_pages(world: World) -> None:
    features = [point(float(i), float(i), n=i) for i in range(10)] + [square(20, 20, 2)]
    sid = world.species(occurrence_data=collection(*features))["id"]
    inside = _occurrences(world, sid, bbox="2.5,2.5,6.5,6.5").json()
    assert [f["properties"]["n"] for f in inside["features"]] == [3, 4, 5, 6]
    assert _occurrences(world, sid, bbox="21,21,21.5,21.5").json()["numberMatched"] == 1
    first = _occurrences(world, sid, limit=4).json()
    assert first["numberMatched"] == 11 and first["numberReturned"] == 4
    rels = {link["rel"]: link["href"] for link in first["links"]}
    assert "next" in rels and "prev" not in rels
    second = world.client.get(rels["next"], headers=world.as_("user")).json()
    assert [f["properties"]["n"] for f in second["features"]] == [4, 5, 6, 7]
    assert {link["rel"] for link in second["links"]} == {"self", "next", "prev"}


@pytest.mark.parametrize(
    "bbox", ["1,2,3", "a,b,c,d", "10,10,0,0", "0,0,200,1", "0,-91,1,1", "nan,0,1,1"]
)
def test_malformed_bbox(world: World, bbox: str) -> None:
    sid = world.species()["id"]
    assert_error(_occurrences(world, sid, bbox=bbox), 422)


def test_update_replaces_occurrences_and_habitat_types(world: World) -> None:
    sid = world.species(occurrence_data=collection(point(1, 1), point(2, 2)))["id"]
    response = world.client.put(
        f"/species/{sid}",
        json={"habitat_types": ["5.1"], "occurrence_data": collection(square(0, 0))},
        headers=world.as_("admin"),
    )
    assert response.status_code == 200, response.text
    assert response.json()["occurrence_count"] == 1
    assert response.json()["habitat_types"] == ["5.1"]
    kept = world.client.put(f"/species/{sid}", json={"name": "X"}, headers=world.as_("admin"))
    assert kept.json()["occurrence_count"] == 1


def test_list_filters(world: World) -> None:
    world.species(name="Badger", scientific_name="Meles meles", habitat_types=["1.4"])
    world.species(name="Beaver", scientific_name="Castor fiber", habitat_types=["5.1", "5.5"])
    assert world.client.get("/species", params={"q": "castor"}).json()["total"] == 1
    by_type = world.client.get("/species", params={"habitat_type": "5.5"}).json()
    assert [s["name"] for s in by_type["items"]] == ["Beaver"]
    assert world.client.get("/species", params={"limit": 1}).json()["total"] == 2


@pytest.mark.parametrize(
    "data",
    [
        {"type": "Feature"},
        {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": None}]},
        collection(point(1, 1), point(500, 1)),
        collection(
            {
                "type": "Feature",
                "properties": {},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]],
                },
            }
        ),
    ],
)
def test_bad_occurrence_data_writes_nothing(world: World, data: dict[str, Any]) -> None:
    body = {"name": "Badger", "occurrence_data": data}
    assert_error(world.client.post("/species", json=body, headers=world.as_("admin")), 422)
    assert world.client.get("/species").json()["total"] == 0
    sid = world.species(occurrence_data=collection(point(1, 1)))["id"]
    response = world.client.put(
        f"/species/{sid}", json={"occurrence_data": data, "name": "Y"}, headers=world.as_("admin")
    )
    assert_error(response, 422)
    assert world.client.get(f"/species/{sid}").json()["name"] == "European Badger"
    assert _occurrences(world, sid).json()["numberMatched"] == 1


def test_duplicate_name_is_a_conflict(world: World) -> None:
    world.species()
    body = {"name": "European Badger"}
    assert_error(world.client.post("/species", json=body, headers=world.as_("admin")), 409)
    assert world.client.get("/species").json()["total"] == 1


def test_occurrences_refuse_a_token_signed_with_another_secret(world: World) -> None:
    sid = world.species()["id"]
    forged = game_token("not-the-secret-" + "z" * 40)
    response = world.client.get(
        f"/species/{sid}/occurrences", headers={"Authorization": f"Bearer {forged}"}
    )
    assert_error(response, 401)
    assert _occurrences(world, sid, "game").status_code == 200


@pytest.mark.parametrize("who", ["user", "admin", "game", "anonymous"])
def test_species_with_its_occurrence_data(world: World, who: str) -> None:
    sid = world.species(occurrence_data=collection(point(1, 1), square(0, 0)))["id"]
    response = world.client.get(
        f"/species/{sid}", params={"include": "occurrence_data"}, headers=world.as_(who)
    )
    if who == "anonymous":
        assert_error(response, 401)
        return
    data = response.json()["occurrence_data"]
    assert data["type"] == "FeatureCollection" and data["numberMatched"] == 2
    assert [f["geometry"]["type"] for f in data["features"]] == ["Point", "Polygon"]
    assert world.client.get(f"/species/{sid}").json()["occurrence_data"] is None
    assert_error(world.client.get(f"/species/{sid}", params={"include": "x"}), 422)
