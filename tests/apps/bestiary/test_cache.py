"""Character cache lifetimes as seed 004 says: the list 1 h, one character 24 h, dropped on
every write; ETag revalidation (304) and `Cache-Control` on both reads."""

from __future__ import annotations

from typing import Any

import pytest

from tests.apps.bestiary.conftest import Cast, box_glb, png
from worldbase.core.cache import MemoryCache


def test_reads_carry_etag_cache_control_and_answer_304(cast: Cast) -> None:
    character = cast.character()
    client = cast.client
    for url in (f"/api/characters/{character['id']}", "/api/characters?race=Troll"):
        first = client.get(url)
        assert first.status_code == 200
        assert first.headers["x-cache"] == "miss"
        assert first.headers["cache-control"] == "public, no-cache"
        etag = first.headers["etag"]
        second = client.get(url)
        assert second.headers["x-cache"] == "hit" and second.headers["etag"] == etag
        assert second.content == first.content
        unchanged = client.get(url, headers={"If-None-Match": etag})
        assert unchanged.status_code == 304 and not unchanged.content
        assert unchanged.headers["etag"] == etag
        assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200


@pytest.mark.parametrize("write", ["update", "image", "model", "delete", "create"])
def test_every_write_drops_the_cached_list_and_character(cast: Cast, write: str) -> None:
    character = cast.character()
    client, admin = cast.client, cast.as_("admin")
    url = f"/api/characters/{character['id']}"
    detail, listing = client.get(url), client.get("/api/characters")
    assert client.get(url).headers["x-cache"] == "hit"
    assert client.get("/api/characters").headers["x-cache"] == "hit"
    response = {
        "update": lambda: client.put(url, json={"level": 40}, headers=admin),
        "image": lambda: client.put(f"{url}/image", files={"file": ("p", png())}, headers=admin),
        "model": lambda: client.put(
            f"{url}/model", files={"file": ("m", box_glb())}, headers=admin
        ),
        "delete": lambda: client.delete(url, headers=admin),
        "create": lambda: client.post("/api/characters", json={"name": "Wolf"}, headers=admin),
    }[write]()
    assert response.status_code < 300, response.text
    after_list = client.get("/api/characters", headers={"If-None-Match": listing.headers["etag"]})
    assert after_list.status_code == 200 and after_list.headers["x-cache"] == "miss"
    after = client.get(url, headers={"If-None-Match": detail.headers["etag"]})
    if write == "delete":
        assert after.status_code == 404
    elif write == "create":  # another character: this one's cached copy is still right
        assert after.status_code == 304
    else:
        assert after.status_code == 200 and after.headers["x-cache"] == "miss"


class Clock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


async def _set_level_behind_the_cache(services: Any, character_id: int, level: int) -> None:
    """A change the app did not make (another deployment, a manual fix): no invalidation."""
    from sqlalchemy import update

    from worldbase.apps.bestiary.models import Character

    async with services.db.sessionmaker() as session:
        await session.execute(
            update(Character).where(Character.id == character_id).values(level=level)
        )
        await session.commit()


def test_list_lives_one_hour_and_a_character_a_day(cast: Cast) -> None:
    client = cast.client
    services: Any = client.app.state.services  # type: ignore[attr-defined]
    if not isinstance(services.cache, MemoryCache):
        _redis_lifetimes(cast, services.cache)
        return
    clock = Clock(services.cache.clock())
    original = services.cache.clock
    services.cache.clock = clock
    try:
        character = cast.character()
        url = f"/api/characters/{character['id']}"
        assert client.get(url).json()["level"] == 24
        assert client.get("/api/characters").json()["items"][0]["level"] == 24
        client.portal.call(_set_level_behind_the_cache, services, character["id"], 99)  # type: ignore[union-attr]

        clock.now += 3599
        assert client.get("/api/characters").json()["items"][0]["level"] == 24
        assert client.get(url).json()["level"] == 24
        clock.now += 2  # past one hour: the list is read again, the character still cached
        listing = client.get("/api/characters")
        assert listing.headers["x-cache"] == "miss"
        assert listing.json()["items"][0]["level"] == 99
        assert client.get(url).json()["level"] == 24
        clock.now += 24 * 3600 - 3601 - 1
        assert client.get(url).headers["x-cache"] == "hit"
        clock.now += 2  # past a day
        fresh = client.get(url)
        assert fresh.headers["x-cache"] == "miss" and fresh.json()["level"] == 99
    finally:
        services.cache.clock = original


def _redis_lifetimes(cast: Cast, cache: Any) -> None:
    """On Redis the keys expire by themselves: their TTLs are what the seed says."""
    character = cast.character()
    cast.client.get(f"/api/characters/{character['id']}")
    cast.client.get("/api/characters")

    async def ttls() -> dict[str, int]:
        # Stored as <namespace><cache epoch>:<key>.
        pattern = cache.namespace + "*:bestiary:*"
        keys = [k async for k in cache.redis.scan_iter(match=pattern)]
        return {
            k.decode().removeprefix(cache.namespace).split(":", 1)[1]: await cache.redis.ttl(k)
            for k in keys
        }

    found = cast.client.portal.call(ttls)  # type: ignore[union-attr]
    detail = found.pop(f"bestiary:characters:{character['id']}")
    assert 24 * 3600 - 60 < detail <= 24 * 3600
    assert found and all(k.startswith("bestiary:characters:list:") for k in found)
    assert all(3600 - 60 < ttl <= 3600 for ttl in found.values())
