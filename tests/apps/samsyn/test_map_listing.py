"""SamSyn's maps list (`/api/v1/maps`, `maps.service.list_in_full`): the same page of maps as
`/api/maps`, each as its own route answers it, in a number of statements that does not grow
with the maps, layers and collaborators listed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event

from tests.apps.samsyn.conftest import CALLERS, Team


@contextmanager
def statements(client: TestClient) -> Iterator[list[str]]:
    """The SQL statements the app runs meanwhile."""
    engine = client.app.state.db.engine.sync_engine  # type: ignore[attr-defined]
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])  # (connection, cursor, statement, ...)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _maps_with_layers(team: Team, count: int, layers: int) -> list[dict[str, Any]]:
    maps = []
    for i in range(count):
        map_ = team.create_map(name=f"Map {i}", permission_level="public")
        for j in range(layers):
            team.add_layer(map_["id"], team.create_layer(name=f"Layer {i}.{j}")["id"])
        maps.append(map_)
    return maps


def test_v1_list_statements_do_not_grow_with_maps_layers_or_collaborators(team: Team) -> None:
    client, owner = team.client, team.as_("owner")
    team.create_map(name="Alone")
    with statements(client) as one_map:
        assert client.get("/api/v1/maps", headers=owner).status_code == 200
    _maps_with_layers(team, 4, layers=3)
    with statements(client) as many:
        listed = client.get("/api/v1/maps", headers=owner).json()
    assert [len(m["map_layers"]) for m in listed] == [3, 3, 3, 3, 0]
    assert len(many) == len(one_map), many
    for name in ("Shared", "Shared too"):
        team.shared_map(name=name)
    with statements(client) as shared:
        listed = client.get("/api/v1/maps", headers=owner).json()
    assert [len(m["collaborators"]) for m in listed[:2]] == [2, 2]
    assert len(shared) == len(one_map), shared
    with statements(client) as public:
        listed = client.get("/api/v1/maps", headers=team.as_("stranger")).json()
    assert len(listed) == 4 and len(public) == len(one_map), public


def test_v1_list_pages_maps_as_api_maps_and_answers_as_each_map(team: Team) -> None:
    """Pages count maps, not the rows of their layers; each map is what its route answers."""
    client = team.client
    _maps_with_layers(team, 3, layers=2)
    team.create_map(name="Private")
    shared = team.shared_map(name="Shared")
    team.add_layer(shared["id"], team.create_layer(name="On the shared map")["id"])
    for who in CALLERS:
        headers = team.as_(who)
        for page in ("limit=2&offset=1", "limit=100&offset=0"):
            ours = client.get(f"/api/maps?include=public&{page}", headers=headers).json()["items"]
            theirs = client.get(f"/api/v1/maps?{page}", headers=headers).json()
            assert [m["id"] for m in theirs] == [m["id"] for m in ours], (who, page)
        for map_ in theirs:
            one = client.get(f"/api/v1/maps/{map_['id']}", headers=headers).json()
            assert map_ == one, who
    owner_view = {m["id"]: m for m in client.get("/api/v1/maps", headers=team.as_("owner")).json()}
    assert [ml["layer"]["name"] for ml in owner_view[shared["id"]]["map_layers"]] == [
        "On the shared map"
    ]
