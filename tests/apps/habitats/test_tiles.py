"""Habitat tiles: who may read them, what they show, caching (memory, storage, ETag),
invalidation by edits, vector habitats, every habitat at once, bad input."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from rio_tiler.io import Reader

from tests.apps.habitats.conftest import SQUARE, World, game_token
from tests.builders import assert_error, run_db
from tests.conftest import truncate_all
from worldbase.apps.habitats.seed import DEMO_CLASSES
from worldbase.core import users
from worldbase.geo.tiles import lonlat_to_tile
from worldbase.settings import Settings

Z = 3
X, Y = lonlat_to_tile(10.0, 50.0, Z)


def rgba(response: Any) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGBA"))


def expected_mask(cog: Path, value: int, z: int = Z, x: int = X, y: int = Y) -> np.ndarray:
    with Reader(str(cog)) as reader:
        image = reader.tile(x, y, z, tilesize=256, indexes=1, resampling_method="nearest")
    data = image.array[0]
    return (np.ma.getdata(data) == value) & ~np.ma.getmaskarray(data)


def _frequent_class(cog: Path) -> int:
    counts = {v: int(expected_mask(cog, v).sum()) for v, _ in DEMO_CLASSES}
    return max(counts, key=lambda v: counts[v])


@pytest.mark.parametrize("who", ["user", "other", "admin", "game", "anonymous", "forged"])
def test_tiles_need_a_valid_token(raster_world: World, who: str) -> None:
    habitat = raster_world.habitat()
    headers = raster_world.as_(who)
    if who == "forged":
        headers = {"Authorization": f"Bearer {game_token('wrong-secret-' + 'q' * 40)}"}
    for url in (f"/habitats/{habitat['id']}/tiles/{Z}/{X}/{Y}", f"/habitats/tiles/{Z}/{X}/{Y}"):
        response = raster_world.client.get(url, headers=headers)
        if who in ("anonymous", "forged"):
            assert_error(response, 401)
        else:
            assert response.status_code == 200
            assert response.headers["content-type"] == "image/png"


def test_game_token_with_an_integer_sub_reads_tiles(raster_world: World) -> None:
    """Game servers sign the player's numeric id: `{"sub": 42}` is the subject "42"."""
    client = raster_world.client
    secret = client.app.state.settings.secret  # type: ignore[attr-defined]
    habitat = raster_world.habitat()
    player = 10_000 + uuid.uuid4().int % 1_000_000
    headers = {"Authorization": f"Bearer {game_token(secret, sub=player)}"}
    response = client.get(f"/habitats/{habitat['id']}/tiles/{Z}/{X}/{Y}", headers=headers)
    assert response.status_code == 200, response.text
    me = client.get("/api/auth/me", headers=headers)
    assert me.status_code == 200, me.text
    again = client.get(
        "/api/auth/me", headers={"Authorization": f"Bearer {game_token(secret, sub=str(player))}"}
    )
    assert again.json()["id"] == me.json()["id"]  # 42 and "42" are the same player
    for bad in (True, 1.5, [1], {"id": 1}, ""):
        token = game_token(secret, sub=bad)  # type: ignore[arg-type]
        url = f"/habitats/{habitat['id']}/tiles/{Z}/{X}/{Y}"
        assert_error(client.get(url, headers={"Authorization": f"Bearer {token}"}), 401)


@pytest.mark.parametrize(
    ("who", "change"),
    [("user", "deactivate"), ("user", "disable"), ("admin", "disable"), ("admin", "delete")],
)
def test_a_disabled_account_loses_tile_access_at_once(
    raster_world: World, who: str, change: str
) -> None:
    """Verified tokens are cached for tiles; disabling or deleting the account drops them,
    so its very next tile request is refused (a game token and one of ours)."""
    client = raster_world.client
    url = f"/habitats/{raster_world.habitat()['id']}/tiles/{Z}/{X}/{Y}"
    headers = raster_world.as_(who)
    assert client.get(url, headers=headers).status_code == 200  # the token is now cached
    user_id = uuid.UUID(client.get("/api/auth/me", headers=headers).json()["id"])
    services = client.app.state.services  # type: ignore[attr-defined]
    hub, cache = services.hub, services.cache

    async def revoke(session: Any) -> None:
        user = await users.get_or_raise(session, user_id=user_id)
        if change == "deactivate":
            await users.deactivate(session, user=user, hub=hub, cache=cache)
        elif change == "disable":
            await users.update(session, user=user, is_active=False, hub=hub, cache=cache)
        else:
            await users.delete(session, user=user, hub=hub, cache=cache)

    run_db(client, revoke)
    assert_error(client.get(url, headers=headers), 401 if change == "delete" else 403)


def test_a_habitat_tile_shows_exactly_its_class_in_its_colour(
    raster_world: World, small_cog: Path
) -> None:
    value = _frequent_class(small_cog)
    code = f"{value // 100}.{value % 100}" if value % 100 else str(value // 100)
    habitat = raster_world.habitat(iucn_code=code, color_hex="#FF8000")
    assert habitat["raster_value"] == value
    pixels = rgba(
        raster_world.client.get(
            f"/habitats/{habitat['id']}/tiles/{Z}/{X}/{Y}", headers=raster_world.as_("user")
        )
    )
    painted = pixels[..., 3] > 0
    assert painted.any()
    np.testing.assert_array_equal(painted, expected_mask(small_cog, value))
    assert (pixels[painted][:, :3] == [255, 128, 0]).all()


def test_cache_tiers_etag_and_invalidation_by_edit(raster_world: World, small_cog: Path) -> None:
    client = raster_world.client
    habitat = raster_world.habitat(iucn_code="1.4", color_hex="#00FF00")
    url = f"/habitats/{habitat['id']}/tiles/{Z}/{X}/{Y}.png"
    headers = raster_world.as_("user")
    first = client.get(url, headers=headers)
    assert first.headers["x-tile-cache"] == "miss"
    second = client.get(url, headers=headers)
    assert second.headers["x-tile-cache"] == "memory"
    assert second.content == first.content and second.headers["etag"] == first.headers["etag"]
    unchanged = client.get(url, headers=headers | {"If-None-Match": first.headers["etag"]})
    assert unchanged.status_code == 304 and not unchanged.content

    from worldbase.geo.tile_cache import flush_pending

    services: Any = client.app.state.services  # type: ignore[attr-defined]
    client.portal.call(flush_pending)  # type: ignore[union-attr]
    stored = client.portal.call(_keys, services.storage, "tiles/habitats/")  # type: ignore[union-attr]
    assert any(k.endswith(".png") for k in stored)
    client.portal.call(services.cache.clear)  # type: ignore[union-attr]
    from_storage = client.get(url, headers=headers)
    assert from_storage.headers["x-tile-cache"] == "storage"
    assert from_storage.content == first.content

    edit = client.put(
        f"/habitats/{habitat['id']}",
        json={"color_hex": "#0000FF"},
        headers=raster_world.as_("admin"),
    )
    assert edit.status_code == 200
    after = client.get(url, headers=headers | {"If-None-Match": first.headers["etag"]})
    assert after.status_code == 200 and after.headers["x-tile-cache"] == "miss"
    assert after.headers["etag"] != first.headers["etag"]
    pixels = rgba(after)
    if (pixels[..., 3] > 0).any():
        assert (pixels[pixels[..., 3] > 0][:, :3] == [0, 0, 255]).all()


async def _keys(storage: Any, prefix: str) -> list[str]:
    return [obj.key async for obj in storage.list(prefix)]


def test_vector_habitat_is_rasterized_in_its_colour(raster_world: World) -> None:
    habitat = raster_world.habitat(
        name="Peat", iucn_code="5.4.1", color_hex="#123456", geometry=SQUARE
    )
    assert habitat["raster_value"] is None
    z = 10
    x, y = lonlat_to_tile(10.5, 50.5, z)  # a tile inside the square
    pixels = rgba(
        raster_world.client.get(
            f"/habitats/{habitat['id']}/tiles/{z}/{x}/{y}", headers=raster_world.as_("user")
        )
    )
    painted = pixels[..., 3] > 0
    assert painted.all()
    assert (pixels[painted][:, :3] == [0x12, 0x34, 0x56]).all()
    far = raster_world.client.get(
        f"/habitats/{habitat['id']}/tiles/{z}/0/0", headers=raster_world.as_("user")
    )
    assert not (rgba(far)[..., 3] > 0).any()


def test_habitat_with_raster_class_and_geometry_draws_both(
    raster_world: World, small_cog: Path
) -> None:
    """The raster class where the raster has it, and the geometry (even where the raster has
    another class or nothing); `raster_value: null` leaves the geometry alone."""
    value = _frequent_class(small_cog)
    code = f"{value // 100}.{value % 100}" if value % 100 else str(value // 100)
    far_square = {  # a square where the class is absent from the tile's raster pixels
        "type": "Polygon",
        "coordinates": [[[1.0, 40.0], [2.0, 40.0], [2.0, 41.0], [1.0, 41.0], [1.0, 40.0]]],
    }
    habitat = raster_world.habitat(iucn_code=code, color_hex="#FF8000", geometry=far_square)
    assert habitat["raster_value"] == value and habitat["geometry"] is not None
    client, headers = raster_world.client, raster_world.as_("user")
    url = f"/habitats/{habitat['id']}/tiles/{Z}/{X}/{Y}"
    gx, gy = lonlat_to_tile(1.5, 40.5, Z)
    assert (gx, gy) != (X, Y)
    raster_mask = expected_mask(small_cog, value)
    np.testing.assert_array_equal(rgba(client.get(url, headers=headers))[..., 3] > 0, raster_mask)
    shape_url = f"/habitats/{habitat['id']}/tiles/{Z}/{gx}/{gy}"
    shape_tile = rgba(client.get(shape_url, headers=headers))
    shape_mask = shape_tile[..., 3] > 0
    assert shape_mask.any() and (shape_tile[shape_mask][:, :3] == [255, 128, 0]).all()
    all_tile = rgba(client.get(f"/habitats/tiles/{Z}/{gx}/{gy}", headers=headers))
    assert ((all_tile[..., 3] > 0) & shape_mask).sum() == shape_mask.sum()

    cleared = client.put(
        f"/habitats/{habitat['id']}", json={"raster_value": None}, headers=raster_world.as_("admin")
    )
    assert cleared.status_code == 200 and cleared.json()["raster_value"] is None
    assert not (rgba(client.get(url, headers=headers))[..., 3] > 0).any()
    polygon = rgba(client.get(shape_url, headers=headers))[..., 3] > 0
    assert polygon.any()
    np.testing.assert_array_equal(polygon | expected_mask(small_cog, value, Z, gx, gy), shape_mask)


def test_all_habitats_tile_uses_the_table_colours(raster_world: World, small_cog: Path) -> None:
    for value, color in DEMO_CLASSES:
        code = f"{value // 100}.{value % 100}" if value % 100 else str(value // 100)
        raster_world.habitat(name=code, iucn_code=code, color_hex=color)
    for path in (f"/habitats/tiles/{Z}/{X}/{Y}.webp", f"/habitats/tiles/{Z}/{X}/{Y}?format=webp"):
        response = raster_world.client.get(path, headers=raster_world.as_("user"))
        assert response.headers["content-type"] == "image/webp"
        pixels = rgba(response)
        colours = {tuple(int(c) for c in p[:3]) for p in pixels[pixels[..., 3] > 0]}
        table = {tuple(int(color[i : i + 2], 16) for i in (1, 3, 5)) for _, color in DEMO_CLASSES}
        assert len(colours) >= 3
        assert colours <= table


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/habitats/{id}/tiles/3/8/1", 422),
        ("/habitats/{id}/tiles/23/0/0", 422),
        ("/habitats/{id}/tiles/-1/0/0", 422),
        ("/habitats/{id}/tiles/3/1/1.jpg", 422),
        ("/habitats/{id}/tiles/3/1/1?format=gif", 422),
        ("/habitats/999/tiles/3/1/1", 404),
        ("/habitats/99999999999/tiles/3/1/1", 404),
        ("/habitats/tiles/3/1/x", 422),
    ],
)
def test_bad_tile_requests(raster_world: World, path: str, code: int) -> None:
    habitat = raster_world.habitat()
    url = path.replace("{id}", str(habitat["id"]))
    assert_error(raster_world.client.get(url, headers=raster_world.as_("user")), code)


def test_without_any_habitat_raster_tiles_answer_503(
    app_factory: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> None:
    # Its own app and storage prefix: the module's app has the demo raster in its storage.
    client = app_factory(make_settings(storage_prefix=f"empty-{uuid.uuid4().hex[:8]}"))
    client.portal.call(truncate_all, client.app.state.services)  # type: ignore[attr-defined,union-attr]
    world = World(client, {"user": game_token(client.app.state.settings.secret)})  # type: ignore[attr-defined]
    from worldbase.apps.habitats import service

    habitat = run_db(client, service.create, values={"name": "Forest", "iucn_code": "1.4"})
    urls = (f"/habitats/{habitat.id}/tiles/1/1/1", "/api/location_info/?lon=0&lat=0")
    for url in urls:
        body = assert_error(client.get(url, headers=world.as_("user")), 503)
        assert "HABITAT_RASTER_URL" in body["message"]
