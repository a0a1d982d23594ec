"""`/api/v1/wms/*`: capabilities, GetFeatureInfo and property discovery through the server,
as SamSyn's frontend calls them (layerService.getWMSCapabilities, getWMSFeatureInfo,
discoverWMSLayerProperties), against MapServer and `InfoWms` on loopback."""

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

METADATA = "http://169.254.169.254/latest/meta-data/"
VIEW = {"bbox": "0,40,20,60", "width": 200, "height": 100, "x": 50, "y": 25}


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WmsServer, InfoWms]]:
    yield from upstreams(tmp_path_factory.mktemp("wms"))


@pytest.fixture(scope="module")
def v1_env(upstream: tuple[WmsServer, InfoWms]) -> dict[str, str]:
    wms, info = upstream
    return served_env(wms.base, info.base)


@pytest.fixture
def wms(upstream: tuple[WmsServer, InfoWms]) -> WmsServer:
    return upstream[0]


@pytest.fixture
def info(upstream: tuple[WmsServer, InfoWms]) -> InfoWms:
    return upstream[1]


def capabilities(api: httpx.Client, url: str, user: ClerkUser | None) -> httpx.Response:
    return api.get("/api/v1/wms/capabilities", params={"url": url}, headers=_h(user))


def _h(user: ClerkUser | None) -> dict[str, str]:
    return user.headers if user is not None else {}


def feature_info(
    api: httpx.Client, url: str, user: ClerkUser | None, **params: Any
) -> httpx.Response:
    query = {"url": url, "layers": "sea", **VIEW, **params}
    return api.get("/api/v1/wms/feature-info", params=query, headers=_h(user))


# --- Capabilities -----------------------------------------------------------------------------


def test_capabilities_in_samsyns_shape_and_cached(
    api: httpx.Client, owner: ClerkUser, stranger: ClerkUser, wms: WmsServer
) -> None:
    answer = capabilities(api, wms.url, owner)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["version"] == "1.3.0" and body["service_title"] == "Worldbase test WMS"
    assert "image/png" in body["getmap_formats"]
    (quads,) = [layer for layer in body["layers"] if layer["name"] == "quads"]
    assert quads["title"] == "Quadrants" and quads["queryable"] is False
    assert quads["bounds"] == [0.0, 40.0, 20.0, 60.0]
    assert quads["dimensions"][0]["name"].lower() == "time"
    assert quads["dimensions"][0]["extent"] == "2024-01-01/2024-02-01/P1M"
    assert "EPSG:3857" in quads["crs"]
    assert all({"name", "title", "legendUrl"} <= set(s) for s in quads["styles"])
    assert "tindex" not in {layer["name"] for layer in body["layers"]}
    # Another user asks the same WMS: from the cache, the WMS is not asked again.
    asked = sum("GetCapabilities" in r for r in wms.requests)
    assert capabilities(api, wms.url, stranger).json() == body
    assert sum("GetCapabilities" in r for r in wms.requests) == asked


def test_capabilities_need_a_signed_in_user(api: httpx.Client, wms: WmsServer) -> None:
    error(capabilities(api, wms.url, None), 401)
    # An admin may of course ask too.
    answer = api.get(
        "/api/v1/wms/capabilities", params={"url": wms.url}, headers=admin_headers(api)
    )
    assert answer.status_code == 200, answer.text


def test_capabilities_refuse_ssrf_targets(
    api: httpx.Client, owner: ClerkUser, wms: WmsServer
) -> None:
    for url in (
        METADATA,
        "http://localhost:22/",
        "http://127.0.0.1:9/wms",  # loopback, but not the allow-listed port
        "http://[::1]/wms",
        "http://10.1.2.3/wms",
        "http://0x7f000001/wms",
        f"{wms.base}/redirect?to={METADATA}",  # allowed host, bounced to metadata
    ):
        body = error(capabilities(api, url, owner), 403)
        assert "WORLDBASE_SOURCE_ALLOWLIST" in str(body["detail"]), (url, body)
    for url in ("file:///etc/passwd", "ftp://example.org/wms", "gopher://x", "wms", ""):
        error(capabilities(api, url, owner), 422)
    error(capabilities(api, "http://example.org/" + "a" * 3000, owner), 422)
    error(api.get("/api/v1/wms/capabilities", headers=owner.headers), 422)


def test_capabilities_of_a_failing_wms_are_5xx(
    api: httpx.Client, owner: ClerkUser, wms: WmsServer
) -> None:
    for path, status, needle in (
        ("/html", 502, "could not be read"),  # not a WMS
        ("/error", 502, "HTTP 500"),
        ("/exception", 502, "Invalid layer"),
        ("/big", 502, "larger than"),  # past the capabilities size limit
        ("/loop", 502, "redirected more than"),
        ("/slow", 504, "did not"),  # SAMSYN_WMS_TIMEOUT=1 here
    ):
        body = error(capabilities(api, f"{wms.base}{path}", owner), status)
        assert needle in body["message"], (path, body)


# --- GetFeatureInfo ---------------------------------------------------------------------------


def test_feature_info_formats_as_samsyn_reads_them(
    api: httpx.Client, owner: ClerkUser, info: InfoWms
) -> None:
    url = f"{info.base}/wms"
    answer = feature_info(api, url, owner, info_format="application/json")
    assert answer.status_code == 200, answer.text
    assert answer.json()["features"][0]["properties"]["depth"] == 42.5
    html = feature_info(api, url, owner).json()  # text/html, SamSyn's default
    assert html == {
        "features": [{"type": "Feature", "properties": {"depth": "42.5", "name": "Deep & blue"}}]
    }
    text = feature_info(api, url, owner, info_format="text/plain").json()
    assert text == {"type": "text", "content": "depth = 42.5"}


def test_feature_info_parameters_per_wms_version(
    api: httpx.Client, owner: ClerkUser, info: InfoWms
) -> None:
    url = f"{info.base}/wms?MAP=sea&token=k"
    feature_info(api, url, owner, time="2024-01-01", cql_filter="depth > 10")
    asked = info.requests[-1]
    assert asked["VERSION"] == "1.3.0" and asked["CRS"] == "EPSG:4326"
    assert [float(v) for v in asked["BBOX"].split(",")] == [40, 0, 60, 20]  # lat/lon order
    assert (asked["I"], asked["J"], asked["WIDTH"], asked["HEIGHT"]) == ("50", "25", "200", "100")
    assert asked["TIME"] == "2024-01-01" and asked["CQL_FILTER"] == "depth > 10"
    assert asked["QUERY_LAYERS"] == "sea" and asked["MAP"] == "sea" and asked["TOKEN"] == "k"
    feature_info(api, url, owner, version="1.1.1")
    asked = info.requests[-1]
    assert asked["SRS"] == "EPSG:4326" and (asked["X"], asked["Y"]) == ("50", "25")
    assert [float(v) for v in asked["BBOX"].split(",")] == [0, 40, 20, 60]


def test_feature_info_bad_input_is_422(api: httpx.Client, owner: ClerkUser, info: InfoWms) -> None:
    url = f"{info.base}/wms"
    asked = len(info.requests)
    for bad in (
        {"x": 200},  # outside the 200 px wide view
        {"y": 100},
        {"bbox": "0,40,20"},
        {"bbox": "a,b,c,d"},
        {"bbox": "20,40,0,60"},  # west > east
        {"width": 0},
        {"width": 100_000},
        {"version": "2.0"},
        {"info_format": "text/html\r\nX-Evil: 1"},
        {"layers": ""},
        {"cql_filter": "x" * 5000},
    ):
        error(feature_info(api, url, owner, **bad), 422)
    assert len(info.requests) == asked  # nothing was asked of the WMS


def test_feature_info_anonymous_only_for_known_wms(
    api: httpx.Client, owner: ClerkUser, wms: WmsServer, info: InfoWms
) -> None:
    body = error(feature_info(api, f"{info.base}/wms", None), 403)
    assert "Sign in" in body["message"]
    # Once the registry names a WMS, anyone viewing a map may query it.
    admin = admin_headers(api)
    created = api.post(
        "/api/v1/wms-servers", json={"name": "Quads", "base_url": wms.url}, headers=admin
    )
    assert created.status_code in (201, 409), created.text
    answer = feature_info(api, wms.url, None, layers="quads", info_format="text/plain")
    assert answer.status_code == 200, answer.text
    assert answer.json()["type"] == "text"  # MapServer: quads is not queryable


def test_feature_info_anonymous_for_a_public_layers_wms(
    api: httpx.Client, owner: ClerkUser, info: InfoWms
) -> None:
    def layer(url: str, is_global: bool) -> None:
        body = {
            "name": "Sea",
            "source_type": "wms",
            "is_global": is_global,
            "source_config": {"url": url, "layers": "quads"},
        }
        answer = api.post("/api/layers", json=body, headers=owner.headers)
        assert answer.status_code == 201, answer.text

    public, private = (f"{info.base}/caps?layer={uuid.uuid4().hex}" for _ in range(2))
    layer(public, True)
    layer(private, False)
    assert feature_info(api, public, None).status_code == 200
    error(feature_info(api, private, None), 403)  # a private layer's WMS stays closed
    assert feature_info(api, private, owner).status_code == 200


def test_feature_info_refuses_ssrf_and_reports_failures(
    api: httpx.Client, owner: ClerkUser, wms: WmsServer
) -> None:
    for url in (METADATA, "http://127.0.0.1:9/wms", f"{wms.base}/redirect?to={METADATA}"):
        error(feature_info(api, url, owner), 403)
    error(feature_info(api, f"{wms.base}/error", owner), 502)
    error(feature_info(api, f"{wms.base}/slow", owner), 504)


# --- Property discovery -----------------------------------------------------------------------


def discover(api: httpx.Client, user: ClerkUser | None, **params: Any) -> httpx.Response:
    return api.get("/api/v1/wms/discover-properties", params=params, headers=_h(user))


def test_discover_properties_from_a_sample(
    api: httpx.Client, owner: ClerkUser, info: InfoWms
) -> None:
    answer = discover(api, owner, url=f"{info.base}/wms", layer="sea", bounds="0,40,20,60")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["properties"] == [
        {"name": "depth", "sampleValue": "42.5", "type": "float"},
        {"name": "name", "sampleValue": "Deep", "type": "str"},
    ]
    assert body["message"] == "Discovered 2 properties"
    asked = info.requests[-1]  # 20 degrees around the middle of the bounds, lat/lon order
    assert [float(v) for v in asked["BBOX"].split(",")] == [40, 0, 60, 20]
    assert asked["INFO_FORMAT"] == "application/json" and asked["I"] == "128"
    empty = discover(api, owner, url=f"{info.base}/empty", layer="sea").json()
    assert empty["properties"] == [] and "No properties" in empty["message"]


def test_discover_properties_is_best_effort_but_not_an_open_door(
    api: httpx.Client, owner: ClerkUser, wms: WmsServer
) -> None:
    failed = discover(api, owner, url=f"{wms.base}/error", layer="quads")
    assert failed.status_code == 200, failed.text
    assert failed.json()["properties"] == [] and "HTTP 500" in failed.json()["error"]
    error(discover(api, owner, url=METADATA, layer="x"), 403)
    error(discover(api, None, url=wms.url, layer="quads"), 401)
    error(discover(api, owner, url=wms.url, layer="quads", bounds="north"), 422)
    error(discover(api, owner, url=wms.url, layer="quads", version="9"), 422)
