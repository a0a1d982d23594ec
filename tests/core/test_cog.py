"""The TiTiler-compatible `/cog/...` endpoints: behind the allow-list, in the error shape."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.builders import DEFAULT_PASSWORD, assert_error, register_user
from tests.conftest import BACKEND, free_port
from tests.rasters import make_cog, range_server
from worldbase.apps.habitats.seed import DEMO_RASTER_KEY as DEMO_HABITAT_RASTER_KEY
from worldbase.geo import raster_readers
from worldbase.settings import Settings

Z, X, Y = 7, 65, 41


def png(content: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(content)))


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("cog")
    make_cog(root / "rgb.tif")
    (root / "text.tif").write_text("not a raster")
    with range_server(root) as base:
        yield base


@pytest.fixture
def cog(
    app_factory: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
    http: str,
) -> Iterator[TestClient]:
    yield app_factory(make_settings(worldbase_source_allowlist=[f"{http}/"]))
    raster_readers.READERS.clear()


def q(url: str) -> str:
    return quote(url, safe="")


def test_titiler_paths(cog: TestClient, http: str) -> None:
    url = q(f"{http}/rgb.tif")
    tj = cog.get(f"/cog/WebMercatorQuad/tilejson.json?url={url}&colormap_name=viridis&bidx=1")
    assert tj.status_code == 200, tj.text
    body = tj.json()
    assert body["tiles"][0].startswith("http://testserver/cog/tiles/WebMercatorQuad/{z}/{x}/{y}")
    assert "colormap_name=viridis" in body["tiles"][0]
    assert body["bounds"] == pytest.approx([2.0, 51.0, 8.0, 56.0])
    tile = cog.get(f"/cog/tiles/WebMercatorQuad/{Z}/{X}/{Y}?url={url}")
    assert tile.status_code == 200 and png(tile.content).shape[:2] == (256, 256)  # JPEG or PNG
    webp = cog.get(f"/cog/tiles/WebMercatorQuad/{Z}/{X}/{Y}.webp?url={url}")
    assert webp.headers["content-type"] == "image/webp"
    colormap = q('{"100": "#ff0000"}')
    red = cog.get(
        f"/cog/tiles/WebMercatorQuad/{Z}/{X}/{Y}.png?url={url}&bidx=3&colormap={colormap}"
    )
    assert tuple(png(red.content)[4, 4]) == (255, 0, 0, 255)
    legacy = cog.get(f"/cog/tiles/{Z}/{X}/{Y}?url={url}&rescale=0,255&return_mask=true")
    assert legacy.status_code == 200 and png(legacy.content).shape == (256, 256, 4)
    assert legacy.headers["etag"] and "max-age" in legacy.headers["cache-control"]
    assert cog.get(
        f"/cog/tiles/{Z}/{X}/{Y}?url={url}", headers={"If-None-Match": legacy.headers["etag"]}
    ).status_code in (200, 304)
    assert cog.get(f"/cog/tiles/WebMercatorQuad/7/0/0?url={url}").status_code == 204
    assert cog.get(f"/cog/tiles/7/0/0?url={url}").status_code == 204
    info = cog.get(f"/cog/info?url={url}").json()
    assert info["count"] == 3 if "count" in info else len(info["band_descriptions"]) == 3
    stats = cog.get(f"/cog/statistics?url={url}&bidx=3").json()
    assert stats["b3"]["min"] == 100
    point = cog.get(f"/cog/point/5,53.5?url={url}").json()
    assert point["values"][2] == 100
    preview = cog.get(f"/cog/preview.png?url={url}&max_size=64")
    assert preview.status_code == 200 and png(preview.content).shape[1] == 64


def test_anyone_may_call_it_and_the_allow_list_decides(cog: TestClient, http: str) -> None:
    _, token = register_user(cog, "someone@example.org")
    _, admin = register_user(cog, "root@example.org", admin=True)
    url = q(f"{http}/rgb.tif")
    for headers in ({}, {"Authorization": f"Bearer {token}"}, {"Authorization": f"Bearer {admin}"}):
        assert cog.get(f"/cog/info?url={url}", headers=headers).status_code == 200
        for refused in (
            "http://169.254.169.254/latest/a.tif",
            "http://10.9.8.7/a.tif",
            "http://[::ffff:127.0.0.1]:1/a.tif",
            "/etc/passwd",
            "file:///etc/hostname",
        ):
            assert_error(cog.get(f"/cog/info?url={q(refused)}", headers=headers), 403)
            assert_error(
                cog.get(f"/cog/tiles/WebMercatorQuad/1/0/0?url={q(refused)}", headers=headers), 403
            )
            assert_error(cog.get(f"/cog/tiles/1/0/0?url={q(refused)}", headers=headers), 403)


def test_bad_input(cog: TestClient, http: str) -> None:
    url = q(f"{http}/rgb.tif")
    tile = f"/cog/tiles/WebMercatorQuad/{Z}/{X}/{Y}?url={url}"
    for query in (
        "&bidx=4",
        "&expression=b9*2",
        "&colormap=%7B",
        "&colormap_name=nope",
        "&rescale=a",
    ):
        response = cog.get(tile + query)
        assert 400 <= response.status_code < 500, (query, response.text)
        assert_error(response, response.status_code)
        legacy = cog.get(f"/cog/tiles/{Z}/{X}/{Y}?url={url}{query}")
        assert_error(legacy, 422)
    assert_error(cog.get(f"/cog/tiles/WebMercatorQuad/30/0/0?url={url}"), 422)
    assert_error(cog.get(f"/cog/tiles/WebMercatorQuad/2/4/0?url={url}"), 422)
    assert_error(cog.get(f"/cog/tiles/NoSuchTms/2/0/0?url={url}"), 404)
    assert_error(cog.get(f"/cog/tiles/25/0/0?url={url}"), 422)
    assert_error(cog.get("/cog/info"), 422)
    assert_error(cog.get(f"/cog/info?url={q('ftp://x/y.tif')}"), 422)
    assert_error(cog.get(f"/cog/info?url={q(f'{http}/missing.tif')}"), 502)
    assert_error(cog.get(f"/cog/tiles/1/0/0?url={q(f'{http}/missing.tif')}"), 502)
    assert_error(cog.get(f"/cog/point/-40,10?url={url}"), 404)


def test_unreachable_source(
    app_factory: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> None:
    base = f"http://127.0.0.1:{free_port()}"
    client = app_factory(make_settings(worldbase_source_allowlist=[base]))
    assert_error(client.get(f"/cog/info?url={q(base + '/a.tif')}"), 502)
    assert_error(client.get(f"/cog/tiles/1/0/0?url={q(base + '/a.tif')}"), 502)


def test_storage_objects_are_never_cog_sources(
    app_factory: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
    tmp_path: Path,
) -> None:
    """Issue 18 item 4: stored objects are read only through the app that owns them."""
    client = app_factory(make_settings())
    storage = client.app.state.services.storage  # type: ignore[attr-defined]
    cog = make_cog(tmp_path / "x.tif")
    client.portal.call(storage.put, "samsyn/cogs/x.tif", cog.read_bytes())  # type: ignore[union-attr]
    for path in (
        f"/cog/tiles/WebMercatorQuad/{Z}/{X}/{Y}?url=",
        "/cog/info?url=",
        "/cog/preview.png?url=",
        f"/cog/tiles/{Z}/{X}/{Y}?url=",
    ):
        assert_error(client.get(path + q("storage://samsyn/cogs/x.tif")), 403)
    local = str(client.app.state.settings.local_storage_path / "samsyn/cogs/x.tif")  # type: ignore[attr-defined]
    assert_error(client.get(f"/cog/info?url={q(local)}"), 403)
    if BACKEND == "served":
        bucket = client.app.state.settings.storage_bucket  # type: ignore[attr-defined]
        # Our own bucket stays closed even when an operator allow-lists it by mistake.
        assert_error(client.get(f"/cog/info?url=s3://{bucket}/samsyn/cogs/x.tif"), 403)
        allowed = app_factory(make_settings(worldbase_source_allowlist=[f"s3://{bucket}/"]))
        assert_error(allowed.get(f"/cog/info?url=s3://{bucket}/samsyn/cogs/x.tif"), 403)
    raster_readers.READERS.clear()


def test_the_demo_habitat_raster_is_a_cog_source(
    app_factory: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
    tmp_path: Path,
) -> None:
    """HABITAT_RASTER_URL unset (`make run`): the game reads the seeded demo raster through
    /cog; every other stored object, under habitats/ too, stays refused."""
    client = app_factory(make_settings(habitat_raster_url=None))
    storage = client.app.state.services.storage  # type: ignore[attr-defined]
    cog = make_cog(tmp_path / "x.tif").read_bytes()
    for key in (DEMO_HABITAT_RASTER_KEY, "habitats/other.tif", "samsyn/cogs/x.tif"):
        client.portal.call(storage.put, key, cog)  # type: ignore[union-attr]
    demo = q(f"storage://{DEMO_HABITAT_RASTER_KEY}")
    assert client.get(f"/cog/info?url={demo}").status_code == 200
    tj = client.get(f"/cog/WebMercatorQuad/tilejson.json?url={demo}")
    assert tj.status_code == 200, tj.text
    assert client.get(f"/cog/tiles/WebMercatorQuad/{Z}/{X}/{Y}?url={demo}").status_code == 200
    for other in (
        "storage://habitats/other.tif",
        "storage://samsyn/cogs/x.tif",
        f"storage://{DEMO_HABITAT_RASTER_KEY}.aux.xml",
        f"storage://habitats/../{DEMO_HABITAT_RASTER_KEY}",
    ):
        assert client.get(f"/cog/info?url={q(other)}").status_code in (403, 422), other
    # Another raster configured: the demo key is just a stored object again.
    configured = app_factory(make_settings(habitat_raster_url="https://example.org/h.tif"))
    assert_error(configured.get(f"/cog/info?url={demo}"), 403)
    # The habitats app disabled: nothing of it is public.
    others = app_factory(make_settings(habitat_raster_url=None, worldbase_apps=["samsyn"]))
    assert_error(others.get(f"/cog/info?url={demo}"), 403)
    raster_readers.READERS.clear()


def test_redirect_after_a_good_start_is_refused(
    app_factory: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
    tmp_path: Path,
) -> None:
    """Issue 18 item 2: an allowed source that answers 206 and then 302s elsewhere."""
    make_cog(tmp_path / "good" / "a.tif")
    make_cog(tmp_path / "secret" / "a.tif", data=np.full((3, 256, 256), 7, "uint8"))
    secret_hits: list[str] = []
    with (
        range_server(tmp_path / "secret", hits=secret_hits) as secret,
        range_server(tmp_path / "good", turn_after=2, turn_to=f"{secret}/a.tif") as good,
    ):
        client = app_factory(make_settings(worldbase_source_allowlist=[f"{good}/"]))
        url = q(f"{good}/a.tif")
        responses = [client.get(f"/cog/info?url={url}")]
        responses += [
            client.get(f"/cog/preview.png?url={url}&max_size=64&bidx=3") for _ in range(2)
        ]
        responses.append(client.get(f"/cog/point/5,53.5?url={url}"))
    assert secret_hits == [], "a request reached the address outside the policy"
    for response in responses[1:]:
        assert response.status_code in (403, 200), response.text
        if response.status_code == 200 and response.headers["content-type"] == "image/png":
            assert 7 not in png(response.content)[..., 0]
    assert any(r.status_code == 403 for r in responses)
    raster_readers.READERS.clear()


def test_metadata_address_through_a_redirect(
    app_factory: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
    tmp_path: Path,
) -> None:
    make_cog(tmp_path / "good" / "a.tif")
    with range_server(tmp_path / "good") as good:
        client = app_factory(make_settings(worldbase_source_allowlist=[f"{good}/"]))
        target = q(f"{good}/redirect?to=http://169.254.169.254/latest/meta-data/a.tif")
        body = assert_error(client.get(f"/cog/info?url={target}"), 403)
    assert "169.254.169.254" in str(body)
    raster_readers.READERS.clear()


def _wal_database(path: Path) -> None:
    import sqlite3

    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("CREATE TABLE t (a)")
    connection.execute("INSERT INTO t VALUES (1)")
    connection.commit()
    # Left open: its -wal and -shm files exist, as a live server's do.
    _open_databases.append(connection)


_open_databases: list[object] = []


def test_data_dir_probe_is_refused_and_data_survives(
    app_factory: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
    tmp_path: Path,
) -> None:
    """Issue 18 items 1 and 16: the live database is no raster, and no existence oracle."""
    settings = make_settings()
    client = app_factory(settings)
    register_user(client, "before@example.org")
    data = settings.data_dir
    probes = [
        str(data / "worldbase.db"),
        str(data / "jobs.huey.db"),
        str(data / "jwt_secret"),
        str(data / "no-such-file"),
        f"/proc/self/root{data}/worldbase.db",
        "/proc/self/cwd/data/worldbase.db",
        f"file://{data}/worldbase.db",
        "/proc/self/environ",
        "/dev/zero",
        "/etc/no-such-file",
        "/vsicurl/http://169.254.169.254/a.tif",
    ]
    answers = set()
    for probe in probes:
        for path in ("/cog/info?url=", f"/cog/tiles/{Z}/{X}/{Y}?url=", "/cog/preview.png?url="):
            response = client.get(path + q(probe))
            body = assert_error(response, 403)
            answers.add((response.status_code, body["message"]))
    assert len(answers) == 1, answers  # the same refusal, existing file or not
    register_user(client, "after@example.org")
    again = app_factory(settings)  # a restart on the same data directory
    for email in ("before@example.org", "after@example.org"):
        login = again.post("/api/auth/login", json={"email": email, "password": DEFAULT_PASSWORD})
        assert login.status_code == 200, login.text


def test_raster_dirs_open_geotiffs_only(
    app_factory: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
    tmp_path: Path,
) -> None:
    rasters = tmp_path / "rasters"
    make_cog(rasters / "a.tif")
    _wal_database(rasters / "db.tif")
    wal = rasters / "db.tif-wal"
    assert wal.exists()
    client = app_factory(make_settings(worldbase_raster_dirs=[str(rasters)]))
    assert client.get(f"/cog/info?url={q(str(rasters / 'a.tif'))}").status_code == 200
    assert client.get(f"/cog/info?url={q('file://' + str(rasters / 'a.tif'))}").status_code == 200
    assert_error(client.get(f"/cog/info?url={q(str(rasters / 'db.tif'))}"), 422)
    assert wal.exists(), "GDAL opened the SQLite database and removed its WAL"
    assert not list(rasters.glob("*.aux.xml")), "GDAL wrote a sidecar"
    assert_error(client.get(f"/cog/info?url={q(str(rasters / '..' / 'x.tif'))}"), 403)
    raster_readers.READERS.clear()


def test_raster_dirs_never_cover_the_data_dir(make_settings: Callable[..., Settings]) -> None:
    from worldbase.settings import ConfigurationError

    settings = make_settings()
    for folder in (settings.data_dir, settings.data_dir.parent, Path("/"), Path("/proc/self")):
        with pytest.raises(ConfigurationError):
            make_settings(worldbase_raster_dirs=[str(folder)]).check()
