"""Habitats: CRUD with admin-only writes, codes, colours, geometry, bad input."""

from __future__ import annotations

import pytest

from tests.apps.habitats.conftest import SQUARE, World
from tests.builders import assert_error


def test_create_derives_raster_value_colour_and_tile_url(world: World) -> None:
    forest = world.habitat()
    assert forest["raster_value"] == 104
    assert forest["tile_url"].endswith(f"/habitats/{forest['id']}/tiles/{{z}}/{{x}}/{{y}}")
    assert forest["tile_url"].startswith("http")
    arable = world.habitat(name="Arable land", iucn_code="14.1", color_hex=None)
    assert arable["raster_value"] == 1401
    assert arable["color_hex"] == "#E34A33"  # the level-1 class colour
    integer = world.habitat(name="Savanna", iucn_code="201", color_hex="#abcdef")
    assert integer["raster_value"] == 201 and integer["color_hex"] == "#ABCDEF"
    explicit = world.habitat(name="Peat", iucn_code="5.4.1", raster_value=541, geometry=SQUARE)
    assert explicit["raster_value"] == 541
    assert explicit["geometry"]["type"] == "Polygon"
    level3 = world.habitat(name="Reef channel", iucn_code="9.8.1")
    assert level3["raster_value"] is None


@pytest.mark.parametrize("who", ["user", "other", "anonymous", "admin", "game"])
def test_reads_are_public_and_writes_are_for_admins(world: World, who: str) -> None:
    habitat = world.habitat()
    listing = world.client.get("/habitats", headers=world.as_(who))
    assert listing.status_code == 200
    assert [h["id"] for h in listing.json()["items"]] == [habitat["id"]]
    assert world.client.get(f"/habitats/{habitat['id']}", headers=world.as_(who)).json() == habitat
    body = {"name": "Boreal Forest", "iucn_code": "1.1"}
    created = world.client.post("/habitats", json=body, headers=world.as_(who))
    updated = world.client.put(
        f"/habitats/{habitat['id']}", json={"color_hex": "#000000"}, headers=world.as_(who)
    )
    deleted = world.client.delete(f"/habitats/{habitat['id']}", headers=world.as_(who))
    if who == "admin":
        assert created.status_code == 201
        assert updated.status_code == 200 and updated.json()["color_hex"] == "#000000"
        assert deleted.status_code == 204
        assert_error(world.client.get(f"/habitats/{habitat['id']}"), 404)
        return
    expected = 401 if who == "anonymous" else 403
    for response in (created, updated, deleted):
        assert_error(response, expected)
    assert world.client.get(f"/habitats/{habitat['id']}").json() == habitat


def test_update_recomputes_raster_value_from_a_new_code(world: World) -> None:
    habitat = world.habitat()
    url = f"/habitats/{habitat['id']}"
    updated = world.client.put(url, json={"iucn_code": "1.5"}, headers=world.as_("admin"))
    assert updated.json()["raster_value"] == 105
    pinned = world.client.put(url, json={"raster_value": 7}, headers=world.as_("admin"))
    assert pinned.json()["raster_value"] == 7
    assert pinned.json()["updated_at"] >= habitat["updated_at"]
    rederived = world.client.put(url, json={"iucn_code": "1.6"}, headers=world.as_("admin"))
    assert rederived.json()["raster_value"] == 106
    cleared = world.client.put(url, json={"raster_value": None}, headers=world.as_("admin"))
    assert cleared.status_code == 200 and cleared.json()["raster_value"] is None
    assert world.client.get(url).json()["raster_value"] is None
    kept = world.client.put(url, json={"name": "Renamed"}, headers=world.as_("admin"))
    assert kept.json()["raster_value"] is None  # an unrelated edit does not bring it back


def test_list_filters_and_pages(world: World) -> None:
    for code, name in (("1.4", "Temperate Forest"), ("1.5", "Dry Forest"), ("4.4", "Grassland")):
        world.habitat(name=name, iucn_code=code, ecosystem_type=name.split()[-1].lower())
    page = world.client.get("/habitats", params={"limit": 2}).json()
    assert page["total"] == 3 and [h["iucn_code"] for h in page["items"]] == ["1.4", "1.5"]
    assert world.client.get("/habitats", params={"q": "dry"}).json()["total"] == 1
    assert world.client.get("/habitats", params={"ecosystem_type": "forest"}).json()["total"] == 2


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"name": "x", "iucn_code": "99.1"}, 422),
        ({"name": "x", "iucn_code": "forest"}, 422),
        ({"name": "x", "iucn_code": "1.4", "color_hex": "green"}, 422),
        ({"name": "x", "iucn_code": "1.4", "color_hex": "#12345"}, 422),
        ({"name": "x", "iucn_code": "1.4", "raster_value": 70000}, 422),
        ({"name": "", "iucn_code": "1.4"}, 422),
        ({"iucn_code": "1.4"}, 422),
        ({"name": "x", "iucn_code": "1.4", "unknown": 1}, 422),
        (
            {"name": "x", "iucn_code": "1.4", "geometry": {"type": "Polygon", "coordinates": []}},
            422,
        ),
        (
            {
                "name": "x",
                "iucn_code": "1.4",
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]],
                },
            },
            422,
        ),
        (
            {
                "name": "x",
                "iucn_code": "1.4",
                "geometry": {"type": "Point", "coordinates": [200, 0]},
            },
            422,
        ),
    ],
)
def test_bad_habitats_are_refused_and_nothing_is_written(
    world: World, body: dict[str, object], code: int
) -> None:
    assert_error(world.client.post("/habitats", json=body, headers=world.as_("admin")), code)
    assert world.client.get("/habitats").json()["total"] == 0


def test_duplicate_iucn_code_is_a_conflict(world: World) -> None:
    first = world.habitat()
    body = {"name": "Again", "iucn_code": "1.4"}
    assert_error(world.client.post("/habitats", json=body, headers=world.as_("admin")), 409)
    other = world.habitat(name="Dry", iucn_code="1.5")
    response = world.client.put(
        f"/habitats/{other['id']}", json={"iucn_code": "1.4"}, headers=world.as_("admin")
    )
    assert_error(response, 409)
    assert world.client.get(f"/habitats/{first['id']}").json() == first


@pytest.mark.parametrize("habitat_id", ["999", "0", "-1", "99999999999", "abc"])
def test_unknown_habitat(world: World, habitat_id: str) -> None:
    response = world.client.get(f"/habitats/{habitat_id}")
    assert_error(response, 422 if habitat_id == "abc" else 404)


def test_a_token_signed_with_another_secret_is_refused(world: World) -> None:
    from tests.apps.habitats.conftest import game_token

    forged = game_token("another-secret-" + "y" * 40)
    response = world.client.post(
        "/habitats",
        json={"name": "x", "iucn_code": "1.4"},
        headers={"Authorization": f"Bearer {forged}"},
    )
    assert_error(response, 401)
