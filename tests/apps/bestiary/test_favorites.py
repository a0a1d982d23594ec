"""Favorites: per user, unique per (user, character), idempotent add and remove."""

from __future__ import annotations

from tests.apps.bestiary.conftest import Cast
from tests.builders import assert_error


def test_favorites_are_per_user_and_idempotent(cast: Cast) -> None:
    troll, draugr = cast.character(), cast.character(name="Draugr")
    client = cast.client
    first = client.post(f"/api/favorites/{troll['id']}", headers=cast.as_("owner"))
    assert first.status_code == 201 and first.json()["character"]["name"] == "Frost Troll"
    again = client.post(f"/api/favorites/{troll['id']}", headers=cast.as_("owner"))
    assert again.status_code == 200 and again.json()["created_at"] == first.json()["created_at"]
    client.post(f"/api/favorites/{draugr['id']}", headers=cast.as_("owner"))
    client.post(f"/api/favorites/{draugr['id']}", headers=cast.as_("other"))
    mine = client.get("/api/favorites", headers=cast.as_("owner")).json()
    assert mine["total"] == 2 and [f["character_id"] for f in mine["items"]] == [
        draugr["id"],
        troll["id"],
    ]
    others = client.get("/api/favorites", headers=cast.as_("other")).json()
    assert [f["character_id"] for f in others["items"]] == [draugr["id"]]
    admin = client.get("/api/favorites", headers=cast.as_("admin")).json()
    assert admin["total"] == 0  # admins have their own favorites, not everyone's
    for _ in range(2):
        removed = client.delete(f"/api/favorites/{troll['id']}", headers=cast.as_("owner"))
        assert removed.status_code == 204
    assert client.get("/api/favorites", headers=cast.as_("owner")).json()["total"] == 1
    # Deleting a character removes it from everyone's favorites.
    client.delete(f"/api/characters/{draugr['id']}", headers=cast.as_("admin"))
    assert client.get("/api/favorites", headers=cast.as_("other")).json()["total"] == 0


def test_favorites_need_a_user_and_an_existing_character(cast: Cast) -> None:
    troll = cast.character()
    client = cast.client
    assert_error(client.get("/api/favorites"), 401)
    assert_error(client.post(f"/api/favorites/{troll['id']}"), 401)
    assert_error(client.delete(f"/api/favorites/{troll['id']}"), 401)
    assert_error(client.post("/api/favorites/999999", headers=cast.as_("owner")), 404)
    assert_error(client.post("/api/favorites/0", headers=cast.as_("owner")), 422)
    assert_error(client.post("/api/favorites/troll", headers=cast.as_("owner")), 422)
    assert_error(client.get("/api/favorites?limit=0", headers=cast.as_("owner")), 422)
    assert client.get("/api/favorites", headers=cast.as_("owner")).json()["total"] == 0
