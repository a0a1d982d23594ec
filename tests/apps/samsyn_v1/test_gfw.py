"""`/api/v1/gfw/...`: Global Fishing Watch heatmap tiles through the server's token, against
a fake GFW on loopback that checks the bearer token and the query as the real API does."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.apps.samsyn_v1.conftest import ClerkUser, V1Server
from tests.apps.samsyn_v1.fake_gfw import TOKEN, FakeGfw, fake_gfw
from tests.builders import assert_error

PATH = "/api/v1/gfw/v3/4wings/tile/heatmap"
QUERY = {
    "format": "MVT",
    "interval": "MONTH",
    "datasets[0]": "public-global-fishing-effort:latest",
    "date-range": "2024-01-01,2024-12-31",
}


@pytest.fixture(scope="module")
def gfw() -> Iterator[FakeGfw]:
    with fake_gfw() as fake:
        yield fake


@pytest.fixture(scope="module")
def v1_env(gfw: FakeGfw) -> dict[str, str]:
    return {"GFW_API_TOKEN": TOKEN, "GFW_API_URL": gfw.url, "GFW_TIMEOUT": "1"}


def test_tiles_for_everyone_cached(
    api: httpx.Client, gfw: FakeGfw, owner: ClerkUser, stranger: ClerkUser, admin: ClerkUser
) -> None:
    for n, headers in enumerate(({}, owner.headers, stranger.headers, admin.headers)):
        tile = api.get(f"{PATH}/3/4/{n}", params=QUERY, headers=headers)
        assert tile.status_code == 200, tile.text
        assert tile.headers["content-type"] == "application/vnd.mapbox-vector-tile"
        assert tile.content.startswith(f"tile 3/4/{n} ".encode())
        assert tile.headers["cache-control"] == "public, max-age=3600"
    before = len(gfw.hits)
    again = api.get(f"{PATH}/3/4/0", params=QUERY)
    assert again.content.startswith(b"tile 3/4/0 ") and len(gfw.hits) == before
    # The same query in another order: the same tile, from the tile cache.
    shuffled = dict(reversed(list(QUERY.items())))
    assert api.get(f"{PATH}/3/4/0", params=shuffled).content == again.content
    assert len(gfw.hits) == before
    revalidated = api.get(
        f"{PATH}/3/4/0", params=QUERY, headers={"If-None-Match": again.headers["etag"]}
    )
    assert revalidated.status_code == 304
    assert any(hit.startswith("/v3/4wings/tile/heatmap/3/4/0?") for hit in gfw.hits)
    png = api.get(f"{PATH}/1/1/1", params=QUERY | {"format": "PNG"})
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    # GFW has nothing there: an empty tile.
    assert api.get(f"{PATH}/5/1/1", params=QUERY).status_code == 204
    health = api.get("/api/v1/gfw/health").json()
    assert health == {"status": "ok", "configured": True}


def test_bad_tiles_and_queries_are_422(api: httpx.Client, gfw: FakeGfw) -> None:
    before = len(gfw.hits)
    for path, params in (
        ("21/0/0", QUERY),
        ("1/2/0", QUERY),
        ("1/0/-1", QUERY),
        ("a/0/0", QUERY),
        ("1/0/0", QUERY | {"format": "GIF"}),
        ("1/0/0", QUERY | {"interval": "WEEK"}),
        ("1/0/0", QUERY | {"date-range": "last year"}),
        ("1/0/0", QUERY | {"datasets[0]": "a b"}),
        ("1/0/0", QUERY | {"bad name": "x"}),
        ("1/0/0", QUERY | {"<script>": "x"}),
        ("1/0/0", QUERY | {"filters[0]": "x" * 1001}),
        ("1/0/0", QUERY | {f"datasets[{n}]": "x" for n in range(1, 40)}),
    ):
        assert_error(api.get(f"{PATH}/{path}", params=params), 422)
    assert len(gfw.hits) == before  # nothing of it reached GFW
    # GFW's own refusal of the query is the caller's 422, in GFW's words.
    body = assert_error(api.get(f"{PATH}/1/0/0", params=QUERY | {"datasets[0]": "nope"}), 422)
    assert "unknown dataset nope" in body["message"]


def test_upstream_faults(api: httpx.Client, v1_server: V1Server) -> None:
    for dataset, status in (("broken", 502), ("revoked", 502), ("drop", 502), ("slow", 504)):
        answer = api.get(f"{PATH}/2/1/1", params=QUERY | {"datasets[0]": dataset})
        body = assert_error(answer, status)
        assert "Global Fishing Watch" in body["message"], body
    # Faults are not cached: the next request asks GFW again (and still fails).
    assert_error(api.get(f"{PATH}/2/1/1", params=QUERY | {"datasets[0]": "broken"}), 502)


def test_the_token_stays_on_the_server(api: httpx.Client, v1_server: V1Server) -> None:
    echoed = api.get(f"{PATH}/2/1/1", params=QUERY | {"datasets[0]": "echo"})
    assert_error(echoed, 422)
    answers = [echoed] + [
        api.get(path, params=QUERY) for path in (f"{PATH}/1/0/0", "/api/v1/gfw/health")
    ]
    answers.append(api.get("/openapi.json"))
    for answer in answers:
        assert TOKEN not in answer.text and TOKEN not in str(answer.headers)
    assert TOKEN not in v1_server.log.read_text(errors="replace")
