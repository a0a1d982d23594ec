"""`/api/v1/titiler/...`: SamSyn's COG tiles, info, statistics and previews, drawn by our
raster engine, for the URLs its GeoTIFF layers name — as anonymous callers, the layer's
owner, a stranger and an admin, with SSRF attempts and bad parameters."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.apps.samsyn_v1.conftest import ClerkUser, signed_in
from tests.builders import assert_error
from tests.conftest import free_port
from tests.rasters import make_cog, range_server

TILE = "/api/v1/titiler/tiles/7/65/41"  # inside the test rasters (lon 2..8, lat 51..56)
CLOSED_PORT = free_port()  # allowed by the policy, nothing listens: unreachable


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("titiler-cogs")
    make_cog(root / "rgb.tif")
    make_cog(root / "other.tif")
    make_cog(root / "grey.tif", count=1, data=np.full((1, 64, 64), 40, "uint8"))
    for month, value in (("202001", 10), ("202002", 20)):
        make_cog(root / "sst" / f"sst_{month}.tif", data=np.full((1, 64, 64), value, "uint8"))
    with range_server(root) as base:
        yield base


@pytest.fixture(scope="module")
def v1_env(http: str) -> dict[str, str]:
    return {"WORLDBASE_SOURCE_ALLOWLIST": f"{http}/,http://127.0.0.1:{CLOSED_PORT}/"}


def layer(api: httpx.Client, user: ClerkUser, **config: Any) -> dict[str, Any]:
    body = {
        "name": "COG",
        "source_type": "geotiff",
        "source_config": {"delivery": "tiles"} | config,
    }
    answer = api.post("/api/layers", json=body, headers=user.headers)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def as_admin(api: httpx.Client, admin: ClerkUser) -> dict[str, str]:
    assert signed_in(api, admin)["is_admin"], "Clerk's public_metadata.isAdmin makes an admin"
    return admin.headers


def png(content: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(content)))


def test_a_layers_cog_is_drawn_for_everyone(
    api: httpx.Client, http: str, owner: ClerkUser, stranger: ClerkUser
) -> None:
    url = f"{http}/rgb.tif"
    layer(api, owner, url=url)
    for headers in ({}, owner.headers, stranger.headers):
        tile = api.get(TILE, params={"url": url}, headers=headers)
        assert tile.status_code == 200, tile.text
        assert tile.headers["content-type"] == "image/png"
        assert png(tile.content).shape == (256, 256, 4)
        assert tile.headers["cache-control"] == "public, max-age=300"
    again = api.get(TILE, params={"url": url}, headers={"If-None-Match": tile.headers["etag"]})
    assert again.status_code == 304
    # Outside the raster: an empty tile.
    assert api.get("/api/v1/titiler/tiles/7/0/0", params={"url": url}).status_code == 204
    info = api.get("/api/v1/titiler/info", params={"url": url})
    assert info.status_code == 200, info.text
    body = info.json()
    assert body["bounds"] == pytest.approx([2.0, 51.0, 8.0, 56.0])
    assert body["count"] == 3 and body["dtype"] == "uint8" and body["minzoom"] <= body["maxzoom"]
    stats = api.get("/api/v1/titiler/statistics", params={"url": url, "bidx": "3"}).json()
    assert set(stats) == {"b3"} and stats["b3"]["min"] == 100
    assert {"percentile_2", "percentile_98", "std", "mean"} <= set(stats["b3"])
    preview = api.get("/api/v1/titiler/preview", params={"url": url, "width": 300, "height": 200})
    assert preview.status_code == 200 and max(png(preview.content).shape[:2]) <= 300


def test_samsyn_render_parameters(api: httpx.Client, http: str, owner: ClerkUser) -> None:
    url = f"{http}/grey.tif"
    layer(api, owner, cogUrl=url)
    base = {"url": url, "bidx": "1", "rescale": "0,100"}
    named = api.get(TILE, params=base | {"colormap": "viridis"})  # SamSyn's spelling
    titiler = api.get(TILE, params=base | {"colormap_name": "viridis"})
    assert named.status_code == titiler.status_code == 200
    assert named.content == titiler.content
    grey = png(api.get(TILE, params=base).content)
    assert abs(int(grey[5, 5, 0]) - 102) <= 1  # 40 of 0..100
    as_json = api.get(TILE, params={"url": url, "colormap": '{"40": "#ff0000"}'})
    assert as_json.status_code == 200 and png(as_json.content)[5, 5, 0] == 255
    for params in (
        {"colormap": "no-such-map"},
        {"colormap_name": "nope"},
        {"rescale": "1"},
        {"rescale": "a,b"},
        {"bidx": "9"},
        {"bidx": "x"},
        {"nodata": "lots"},
        {"colormap": "{"},
    ):
        assert_error(api.get(TILE, params={"url": url} | params), 422)
    for path in ("tiles/25/0/0", "tiles/3/8/0", "tiles/3/0/-1"):
        assert api.get(f"/api/v1/titiler/{path}", params={"url": url}).status_code == 422
    for extra in ({"width": 5000}, {"height": 0}, {"width": "wide"}):
        assert_error(api.get("/api/v1/titiler/preview", params={"url": url} | extra), 422)
    assert_error(api.get(TILE), 422)  # no url
    assert_error(api.get(TILE, params={"url": ""}), 422)
    assert_error(api.get(TILE, params={"url": "https://e.org/" + "a" * 2100}), 422)


def test_only_urls_of_saved_layers(
    api: httpx.Client, http: str, owner: ClerkUser, stranger: ClerkUser
) -> None:
    url = f"{http}/other.tif"
    for path in (TILE, "/api/v1/titiler/info", "/api/v1/titiler/statistics"):
        for headers in ({}, owner.headers, stranger.headers):
            body = assert_error(api.get(path, params={"url": url}, headers=headers), 403)
            assert "not authorized" in body["message"].lower()
    # Spelled differently (host case, a trailing slash): the same layer URL.
    saved = layer(api, stranger, url=url)
    for spelling in (url, url + "/", url.replace("http://", "HTTP://")):
        assert api.get(TILE, params={"url": spelling}).status_code == 200, spelling
    # The layer is gone: its URL is no longer readable (statistics are not cached).
    answer = api.delete(f"/api/layers/{saved['id']}", headers=stranger.headers)
    assert answer.status_code == 204, answer.text
    assert_error(api.get("/api/v1/titiler/statistics", params={"url": url}), 403)


def test_steps_of_a_layers_url_template(api: httpx.Client, http: str, owner: ClerkUser) -> None:
    layer(
        api,
        owner,
        cogUrlTemplate=f"{http}/sst/sst_{{YYYYMM}}.tif",
        temporal={
            "enabled": True,
            "start": "2020-01-01",
            "end": "2020-02-29",
            "resolution": "monthly",
        },
    )
    stats = api.get("/api/v1/titiler/statistics", params={"url": f"{http}/sst/sst_202002.tif"})
    assert stats.status_code == 200 and stats.json()["b1"]["max"] == 20
    for other in ("sst/sst_2020.tif", "sst/sst_202002.tif.aux", "sst/x_202002.tif"):
        assert_error(api.get("/api/v1/titiler/info", params={"url": f"{http}/{other}"}), 403)


def test_admins_may_check_any_url_the_policy_allows(
    api: httpx.Client, http: str, admin: ClerkUser
) -> None:
    headers = as_admin(api, admin)
    url = f"{http}/other.tif?admin-check"
    for path in ("info", "statistics", "preview"):
        answer = api.get(f"/api/v1/titiler/{path}", params={"url": url}, headers=headers)
        assert answer.status_code == 200, (path, answer.text)
    # Tiles are for layers' URLs, admins' too.
    assert_error(api.get(TILE, params={"url": url}, headers=headers), 403)


def test_a_url_an_admin_inspected_may_be_previewed_without_a_token(
    api: httpx.Client, http: str, admin: ClerkUser, stranger: ClerkUser
) -> None:
    # SamSyn's admin form fetches the info with its token, then shows the preview as an
    # <img>, which sends none.
    url = f"{http}/other.tif?inspected"
    assert_error(api.get("/api/v1/titiler/preview", params={"url": url}), 403)
    info = api.get("/api/v1/titiler/info", params={"url": url}, headers=as_admin(api, admin))
    assert info.status_code == 200, info.text
    preview = api.get("/api/v1/titiler/preview", params={"url": url})
    assert preview.status_code == 200 and preview.headers["content-type"] == "image/png"
    # Only that URL, and only previews: a stranger's info of it, its tiles and another URL
    # stay refused.
    assert_error(
        api.get("/api/v1/titiler/info", params={"url": url}, headers=stranger.headers), 403
    )
    assert_error(api.get(TILE, params={"url": url}), 403)
    other = f"{http}/other.tif?not-inspected"
    assert_error(api.get("/api/v1/titiler/preview", params={"url": other}), 403)


# What Chromium sends for an <img> (SamSyn's admin form shows the preview as one).
IMG_ACCEPT = {"Accept": "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"}


def test_a_refused_preview_is_a_blank_image_for_an_img(
    api: httpx.Client, http: str, admin: ClerkUser, stranger: ClerkUser
) -> None:
    # The form renders the <img> as the URL is typed, before "Fetch Info": a JSON 403 would
    # fire its onError, which hides the preview for good ("Preview not available").
    url = f"{http}/other.tif?typed"
    params = {"url": url, "width": 300, "height": 200}
    for headers in (IMG_ACCEPT, IMG_ACCEPT | stranger.headers):
        refused = api.get("/api/v1/titiler/preview", params=params, headers=headers)
        assert refused.status_code == 403 and refused.headers["content-type"] == "image/png"
        blank = png(refused.content)
        assert blank.shape[:2] == (200, 300), blank.shape
        assert not Image.open(io.BytesIO(refused.content)).convert("RGBA").getbbox()  # all clear
    # Anyone else still gets the error shape, a JSON asker too.
    assert_error(api.get("/api/v1/titiler/preview", params=params), 403)
    json_img = IMG_ACCEPT["Accept"] + ",application/json"
    assert_error(
        api.get("/api/v1/titiler/preview", params=params, headers={"Accept": json_img}), 403
    )
    # Once the admin has inspected it, the same <img> gets the real preview.
    info = api.get("/api/v1/titiler/info", params={"url": url}, headers=as_admin(api, admin))
    assert info.status_code == 200, info.text
    shown = api.get("/api/v1/titiler/preview", params=params, headers=IMG_ACCEPT)
    assert shown.status_code == 200 and png(shown.content)[..., :3].any()
    # SSRF URLs stay refused to an <img>, as to anyone.
    for bad in SSRF:
        answer = api.get("/api/v1/titiler/preview", params={"url": bad}, headers=IMG_ACCEPT)
        assert answer.status_code in (403, 422), (bad, answer.text)


SSRF = (
    "http://169.254.169.254/latest/meta-data/iam.tif",
    "http://127.0.0.1:22/x.tif",
    "http://localhost/x.tif",
    "http://[::1]/x.tif",
    "http://10.0.0.1/x.tif",
    "http://0x7f000001/x.tif",
    "file:///etc/passwd",
    "/etc/passwd",
    "storage://samsyn/cogs/x.tif",
    "gopher://127.0.0.1/x",
    "http://user:pw@example.org/x.tif",
)


def test_the_source_policy_holds_for_admins(
    api: httpx.Client, admin: ClerkUser, v1_server: Any
) -> None:
    headers = as_admin(api, admin)
    own = f"{v1_server.base_url}/openapi.json"
    for url in (*SSRF, own):
        answer = api.get("/api/v1/titiler/info", params={"url": url}, headers=headers)
        assert answer.status_code in (403, 422), (url, answer.text)
        assert_error(answer, answer.status_code)


def test_ssrf_urls_are_refused_for_everyone_else(api: httpx.Client, stranger: ClerkUser) -> None:
    for url in SSRF:
        for path in (TILE, "/api/v1/titiler/info", "/api/v1/titiler/preview"):
            answer = api.get(path, params={"url": url}, headers=stranger.headers)
            assert answer.status_code in (403, 422), (url, path, answer.text)


def test_an_unreachable_cog_is_502(api: httpx.Client, owner: ClerkUser) -> None:
    url = f"http://127.0.0.1:{CLOSED_PORT}/gone.tif"
    layer(api, owner, url=url)
    for path in (TILE, "/api/v1/titiler/info"):
        body = assert_error(api.get(path, params={"url": url}), 502)
        assert "raster source" in body["message"].lower()


def test_missing_file_of_a_saved_layer_is_not_a_500(
    api: httpx.Client, http: str, owner: ClerkUser, tmp_path: Path
) -> None:
    url = f"{http}/missing.tif"
    layer(api, owner, url=url)
    answer = api.get("/api/v1/titiler/info", params={"url": url})
    assert answer.status_code in (404, 502), answer.text
    assert str(tmp_path) not in answer.text
