"""`/api/v1/wms-servers`: the shared WMS server registry as SamSyn's frontend uses it
(wmsServerService.ts): anyone reads, admins add, the admin who added a server changes or
removes it, any signed-in user refreshes its capabilities."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.apps.samsyn_v1.conftest import ClerkUser
from tests.apps.samsyn_v1.wms_upstream import (
    InfoWms,
    admin_headers,
    error,
    served_env,
    upstreams,
)
from tests.mapserver import WmsServer

PATH = "/api/v1/wms-servers"


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WmsServer, InfoWms]]:
    yield from upstreams(tmp_path_factory.mktemp("wms"))


@pytest.fixture(scope="module")
def v1_env(upstream: tuple[WmsServer, InfoWms]) -> dict[str, str]:
    return served_env(upstream[0].base, upstream[1].base)


@pytest.fixture
def wms(upstream: tuple[WmsServer, InfoWms]) -> WmsServer:
    return upstream[0]


def unique_url(wms: WmsServer) -> str:
    """The MapServer under a URL of its own (each test saves its own server; the query
    parameter reaches MapServer, which ignores it)."""
    return f"{wms.url}?tenant={uuid.uuid4().hex}"


def add(api: httpx.Client, headers: dict[str, str], url: str, **body: Any) -> httpx.Response:
    return api.post(PATH, json={"name": "Quads WMS", "base_url": url, **body}, headers=headers)


@pytest.fixture
def saved(api: httpx.Client, wms: WmsServer) -> dict[str, Any]:
    answer = add(api, admin_headers(api), unique_url(wms), description="Test quadrants")
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_an_admin_adds_a_server_with_its_capabilities(
    api: httpx.Client, saved: dict[str, Any]
) -> None:
    assert saved["version"] == "1.3.0" and saved["service_title"] == "Worldbase test WMS"
    assert saved["layer_count"] == len(saved["capabilities_cache"]["layers"]) >= 1
    assert saved["cached_at"] and saved["created_by"] and saved["description"] == "Test quadrants"
    # Anyone lists (without the capabilities), reads and browses the layers.
    listed = api.get(PATH).json()
    mine = next(s for s in listed if s["id"] == saved["id"])
    assert "capabilities_cache" not in mine and mine["layer_count"] == saved["layer_count"]
    got = api.get(f"{PATH}/{saved['id']}").json()
    assert got["capabilities_cache"] == saved["capabilities_cache"]
    layers = api.get(f"{PATH}/{saved['id']}/layers").json()
    assert layers["server_id"] == saved["id"] and layers["server_name"] == "Quads WMS"
    assert layers["base_url"] == saved["base_url"] and layers["version"] == "1.3.0"
    (quads,) = [layer for layer in layers["layers"] if layer["name"] == "quads"]
    assert quads["bounds"] == [0.0, 40.0, 20.0, 60.0] and quads["title"] == "Quadrants"


def test_layers_filter(api: httpx.Client, saved: dict[str, Any]) -> None:
    url = f"{PATH}/{saved['id']}/layers"
    assert [x["name"] for x in api.get(url, params={"q": "QUADR"}).json()["layers"]] == ["quads"]
    assert api.get(url, params={"q": "nothing-like-it"}).json()["layers"] == []
    assert api.get(url, params={"queryable": "true"}).json()["layers"] == []
    error(api.get(url, params={"q": "x" * 500}), 422)


def test_only_admins_add_servers(
    api: httpx.Client, owner: ClerkUser, wms: WmsServer, saved: dict[str, Any]
) -> None:
    before = len(api.get(PATH).json())
    error(add(api, owner.headers, unique_url(wms)), 403)
    error(add(api, {}, unique_url(wms)), 401)
    body = error(add(api, admin_headers(api), saved["base_url"]), 409)
    assert "already exists" in body["message"]
    assert len(api.get(PATH).json()) == before


def test_a_server_that_cannot_be_read_is_not_added(api: httpx.Client, wms: WmsServer) -> None:
    admin = admin_headers(api)
    before = len(api.get(PATH).json())
    for url, status in (
        ("http://169.254.169.254/latest/meta-data/", 403),
        ("http://127.0.0.1:9/wms", 403),
        (f"{wms.base}/redirect?to=http://169.254.169.254/", 403),
        (f"{wms.base}/html", 502),
        (f"{wms.base}/error", 502),
        (f"{wms.base}/slow", 504),
    ):
        error(add(api, admin, url), status)
    for body in (
        {"name": "x", "base_url": "javascript:alert(1)"},
        {"name": "x", "base_url": "file:///etc/passwd"},
        {"name": "", "base_url": wms.url},
        {"name": "x" * 300, "base_url": wms.url},
        {"base_url": wms.url},
        {"name": "x", "base_url": wms.url, "created_by": str(uuid.uuid4())},
    ):
        error(api.post(PATH, json=body, headers=admin), 422)
    assert len(api.get(PATH).json()) == before


def test_update_and_delete_by_the_admin_who_added_it(
    api: httpx.Client, owner: ClerkUser, saved: dict[str, Any]
) -> None:
    url = f"{PATH}/{saved['id']}"
    admin = admin_headers(api)
    error(api.put(url, json={"name": "Mine"}, headers=owner.headers), 403)
    error(api.put(url, json={"name": "Mine"}), 401)
    error(api.put(url, json={"base_url": "http://elsewhere.example/"}, headers=admin), 422)
    changed = api.put(url, json={"description": None, "name": "Renamed"}, headers=admin)
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == "Renamed" and changed.json()["description"] is None
    assert changed.json()["capabilities_cache"] == saved["capabilities_cache"]
    error(api.delete(url, headers=owner.headers), 403)
    error(api.delete(url), 401)
    gone = api.delete(url, headers=admin)
    assert gone.status_code == 200 and gone.json() == {
        "status": "success",
        "message": "WMS server deleted",
    }
    for answer in (api.get(url), api.get(f"{url}/layers"), api.delete(url, headers=admin)):
        error(answer, 404)


def test_any_signed_in_user_refreshes(
    api: httpx.Client, stranger: ClerkUser, saved: dict[str, Any]
) -> None:
    url = f"{PATH}/{saved['id']}/refresh"
    error(api.post(url), 401)
    answer = api.post(url, headers=stranger.headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["cached_at"] > saved["cached_at"]
    assert answer.json()["layer_count"] == saved["layer_count"]


def test_a_failed_refresh_keeps_the_saved_capabilities(
    api: httpx.Client, stranger: ClerkUser, upstream: tuple[WmsServer, InfoWms]
) -> None:
    info = upstream[1]
    info.caps_up = True
    answer = add(api, admin_headers(api), f"{info.base}/caps?v={uuid.uuid4().hex}")
    assert answer.status_code == 201, answer.text
    saved = answer.json()
    info.caps_up = False
    try:
        url = f"{PATH}/{saved['id']}"
        body = error(api.post(f"{url}/refresh", headers=stranger.headers), 502)
        assert "HTTP 503" in body["message"]
        kept = api.get(url).json()
        assert kept["cached_at"] == saved["cached_at"]
        assert kept["capabilities_cache"] == saved["capabilities_cache"]
    finally:
        info.caps_up = True


def test_unknown_and_malformed_ids(api: httpx.Client, stranger: ClerkUser) -> None:
    missing = uuid.uuid4()
    for answer in (
        api.get(f"{PATH}/{missing}"),
        api.get(f"{PATH}/{missing}/layers"),
        api.post(f"{PATH}/{missing}/refresh", headers=stranger.headers),
        api.put(f"{PATH}/{missing}", json={"name": "x"}, headers=admin_headers(api)),
    ):
        error(answer, 404)
    error(api.get(f"{PATH}/not-a-uuid"), 422)
    error(api.get(PATH, params={"limit": 0}), 422)


def test_a_clerk_admin_adds_a_server_and_another_admin_cannot_remove_it(
    api: httpx.Client, admin: ClerkUser, wms: WmsServer
) -> None:
    answer = add(api, admin.headers, unique_url(wms))
    assert answer.status_code == 201, answer.text
    url = f"{PATH}/{answer.json()['id']}"
    error(api.delete(url, headers=admin_headers(api)), 403)  # not the admin who added it
    assert api.delete(url, headers=admin.headers).status_code == 200
