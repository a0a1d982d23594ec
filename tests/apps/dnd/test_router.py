"""Images: generate, search, get, feature, delete/restore, and the streamed files."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.apps.dnd.conftest import CountingProvider, generate, stored_keys, use_provider
from tests.builders import assert_error
from worldbase.core.errors import UpstreamError


def _webp(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "WEBP"
    return image


def test_generate_stores_webp_and_thumbnail_and_returns_seed_shape(client: TestClient) -> None:
    response = generate(client, subject_type="scene", subject_name="Tavern", aspect_ratio="16:9")
    assert response.status_code == 201, response.text
    body = response.json()
    for field in [
        "id",
        "subject_name",
        "subject_type",
        "component",
        "storage_path_full",
        "storage_path_thumbnail",
        "file_size_bytes",
        "generation_time_ms",
        "created_at",
        "is_featured",
        "use_count",
        "base64_data",
    ]:
        assert field in body, field
    full = _webp(base64.b64decode(body["base64_data"]))
    assert full.size == (1024, 576)
    assert body["file_size_bytes"] == len(base64.b64decode(body["base64_data"]))
    assert body["created_at"].endswith("+00:00") or body["created_at"].endswith("Z")
    assert sorted(stored_keys(client)) == sorted(
        [body["storage_path_full"], body["storage_path_thumbnail"]]
    )
    thumb = client.get(f"/api/v1/images/{body['id']}/thumbnail")
    assert _webp(thumb.content).size == (200, 200)


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"subject_type": "monster"}, "subject_type"),
        ({"aspect_ratio": "3:2"}, "aspect_ratio"),
        ({"prompt": "too short"}, "prompt"),
        ({"prompt": "x" * 1001}, "prompt"),
        ({"subject_name": "<b>Sword</b>"}, "subject_name"),
        ({"prompt": "A sword <script>alert(1)</script> of fire"}, "prompt"),
        ({"prompt": "A sword with onclick=steal() runes"}, "prompt"),
        ({"custom_prompt": "a shiny blade of legend"}, "body"),
        ({"component": "bad component!"}, "component"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_input_is_422_and_writes_nothing(
    client: TestClient, override: dict[str, Any], field: str
) -> None:
    body = assert_error(generate(client, **override), 422)
    assert field in body["message"]
    assert stored_keys(client) == []
    assert client.get("/api/v1/images/search").json()["total"] == 0


def test_custom_prompt_naming_the_subject_is_accepted(client: TestClient) -> None:
    response = generate(client, custom_prompt="Make the flame tongue blade glow blue")
    assert response.status_code == 201, response.text
    assert response.json()["custom_prompt"] == "Make the flame tongue blade glow blue"


def test_provider_failure_leaves_no_row_and_no_file(client: TestClient) -> None:
    use_provider(client, CountingProvider(delay=0, fail=UpstreamError("Image provider error")))
    assert_error(generate(client), 502)
    assert stored_keys(client) == []
    assert client.get("/api/v1/images/search").json()["total"] == 0


def test_database_failure_after_files_removes_the_files(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uuid

    from worldbase.apps.dnd import service

    original = service.new_row

    def broken_row(*args: Any, **kwargs: Any) -> Any:
        row = original(*args, **kwargs)
        row.created_by = uuid.uuid4()  # no such user: the foreign key fails the commit
        return row

    monkeypatch.setattr(service, "new_row", broken_row)
    response = generate(client)
    assert response.status_code == 500
    assert stored_keys(client) == []


def test_search_filters_orders_featured_first_then_newest_and_paginates(
    client: TestClient,
) -> None:
    ids = [
        generate(
            client, subject_name=name, subject_type=kind, prompt=f"{name} in a quiet place"
        ).json()["id"]
        for name, kind in [
            ("Rope", "item"),
            ("Rope", "item"),
            ("Tavern", "scene"),
            ("Rope", "item"),
        ]
    ]
    client.put(f"/api/v1/images/{ids[0]}/feature")
    page = client.get("/api/v1/images/search", params={"subject_name": "Rope"}).json()
    assert [item["id"] for item in page["items"]] == [ids[0], ids[3], ids[1]]
    assert (page["total"], page["page"], page["page_size"], page["total_pages"]) == (3, 1, 20, 1)
    assert "base64_data" not in page["items"][0]
    second = client.get("/api/v1/images/search", params={"page": 2, "page_size": 2}).json()
    assert second["total"] == 4 and second["total_pages"] == 2 and len(second["items"]) == 2
    scenes = client.get("/api/v1/images/search", params={"subject_type": "scene"}).json()
    assert [item["id"] for item in scenes["items"]] == [ids[2]]
    featured = client.get("/api/v1/images/search", params={"is_featured": True}).json()
    assert [item["id"] for item in featured["items"]] == [ids[0]]
    assert_error(client.get("/api/v1/images/search", params={"page_size": 101}), 422)
    assert_error(client.get("/api/v1/images/search", params={"subject_type": "x"}), 422)


def test_search_reports_the_seeds_pagination_and_sorts(client: TestClient) -> None:
    ids = [
        generate(client, subject_name=f"Rope {n}", prompt=f"A coil of rope number {n}").json()["id"]
        for n in range(3)
    ]
    client.put(f"/api/v1/images/{ids[0]}/feature")
    for _ in range(2):
        client.get(f"/api/v1/images/{ids[1]}")

    def order(sort: str | None) -> list[int]:
        params = {"sort": sort} if sort else {}
        page = client.get("/api/v1/images/search", params=params).json()
        return [item["id"] for item in page["items"]]

    assert order(None) == order("featured") == [ids[0], ids[2], ids[1]]
    assert order("newest") == [ids[2], ids[1], ids[0]]
    assert order("oldest") == ids
    assert order("most_used") == [ids[1], ids[2], ids[0]]
    page = client.get("/api/v1/images/search", params={"page_size": 2, "sort": "oldest"}).json()
    assert (page["total"], page["total_items"], page["total_pages"]) == (3, 3, 2)
    assert page["sort"] == "oldest"
    body = assert_error(client.get("/api/v1/images/search", params={"sort": "random"}), 422)
    assert "sort" in body["message"]


def test_get_counts_uses_and_can_omit_data(client: TestClient) -> None:
    image_id = generate(client).json()["id"]
    first = client.get(f"/api/v1/images/{image_id}").json()
    assert first["use_count"] == 1 and first["base64_data"]
    light = client.get(f"/api/v1/images/{image_id}", params={"include_data": False}).json()
    assert light["base64_data"] is None and light["use_count"] == 1
    assert client.get(f"/api/v1/images/{image_id}").json()["use_count"] == 2
    assert_error(client.get("/api/v1/images/999999"), 404)
    assert_error(client.get("/api/v1/images/0"), 422)


def test_feature_toggles_or_sets(client: TestClient) -> None:
    image_id = generate(client).json()["id"]
    assert client.put(f"/api/v1/images/{image_id}/feature").json()["is_featured"] is True
    assert client.put(f"/api/v1/images/{image_id}/feature").json()["is_featured"] is False
    response = client.put(f"/api/v1/images/{image_id}/feature", json={"is_featured": True})
    assert response.json()["is_featured"] is True
    assert_error(client.put(f"/api/v1/images/{image_id}/feature", json={"is_featured": "x"}), 422)
    assert_error(client.put("/api/v1/images/424242/feature"), 404)


def test_soft_delete_hides_and_restore_brings_back(client: TestClient) -> None:
    image = generate(client).json()
    deleted = client.delete(f"/api/v1/images/{image['id']}")
    assert deleted.status_code == 200 and deleted.json()["id"] == image["id"]
    assert_error(client.get(f"/api/v1/images/{image['id']}"), 404)
    assert_error(client.get(f"/api/v1/images/{image['id']}/file"), 404)
    assert client.get("/api/v1/images/search").json()["total"] == 0
    assert len(stored_keys(client)) == 2  # kept for restore
    assert_error(client.delete(f"/api/v1/images/{image['id']}"), 404)
    restored = client.post(f"/api/v1/images/{image['id']}/restore")
    assert restored.status_code == 200 and restored.json()["is_deleted"] is False
    assert client.get(f"/api/v1/images/{image['id']}").status_code == 200
    assert_error(client.post("/api/v1/images/424242/restore"), 404)


def test_file_has_etag_cache_control_304_and_ranges(client: TestClient) -> None:
    image = generate(client).json()
    url = f"/api/v1/images/{image['id']}/file"
    full = client.get(url)
    assert full.status_code == 200
    assert full.headers["content-type"] == "image/webp"
    assert full.headers["cache-control"].startswith("public")
    assert full.content == base64.b64decode(image["base64_data"])
    etag = full.headers["etag"]
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    part = client.get(url, headers={"Range": "bytes=0-99"})
    assert part.status_code == 206
    assert part.content == full.content[:100]
    size = len(full.content)
    assert part.headers["content-range"] == f"bytes 0-99/{size}"
    tail = client.get(url, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == full.content[-10:]
    beyond = client.get(url, headers={"Range": f"bytes={size}-"})
    assert_error(beyond, 416)
    assert beyond.headers["content-range"] == f"bytes */{size}"
    stale = client.get(url, headers={"Range": "bytes=0-9", "If-Range": '"old"'})
    assert stale.status_code == 200 and stale.content == full.content


def test_health_counts_images(client: TestClient) -> None:
    generate(client)
    health = client.get("/health").json()
    assert health["apps"]["dnd"] == {"images": {"total": 1}}


def test_demo_client_page_is_served(client: TestClient) -> None:
    page = client.get("/api/v1/client")
    assert page.status_code == 200 and "/api/v1/images/generate" in page.text


def _bucket(endpoint: str) -> str:
    import uuid

    import boto3

    name = f"dnd-paths-{uuid.uuid4().hex[:8]}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    ).create_bucket(Bucket=name)
    return name


def _fetch_stored(client: TestClient, path: str, **headers: str) -> Any:
    """GET `/{path}` as the portal page does; an S3 redirect is followed outside the app."""
    import httpx

    response = client.get(f"/{path}", headers=headers, follow_redirects=False)
    if response.status_code != 307:
        return response
    assert response.headers["cache-control"] == "no-store"
    return httpx.get(response.headers["location"], headers=headers)


def test_stored_paths_are_urls_that_serve_the_files(client: TestClient) -> None:
    image = generate(client).json()
    full = client.get(f"/api/v1/images/{image['id']}/file").content
    thumb = client.get(f"/api/v1/images/{image['id']}/thumbnail").content
    served_full = _fetch_stored(client, image["storage_path_full"])
    assert served_full.status_code == 200 and served_full.content == full
    served_thumb = _fetch_stored(client, image["storage_path_thumbnail"])
    assert served_thumb.status_code == 200 and served_thumb.content == thumb
    etag = served_full.headers["etag"]
    assert (
        _fetch_stored(client, image["storage_path_full"], **{"If-None-Match": etag}).status_code
        == 304
    )
    part = _fetch_stored(client, image["storage_path_full"], Range="bytes=0-9")
    assert part.status_code == 206 and part.content == full[:10]
    # Listed images carry the same paths.
    listed = client.get("/api/v1/images/search").json()["items"][0]
    assert _fetch_stored(client, listed["storage_path_thumbnail"]).content == thumb
    # A deleted image is not served (as /file), a restored one again.
    client.delete(f"/api/v1/images/{image['id']}")
    assert_error(client.get(f"/{image['storage_path_thumbnail']}"), 404)
    client.post(f"/api/v1/images/{image['id']}/restore")
    assert _fetch_stored(client, image["storage_path_thumbnail"]).status_code == 200


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("dnd/images/full/" + "0" * 32 + ".webp", 404),
        ("dnd/images/other/" + "0" * 32 + ".webp", 422),
        ("dnd/images/full/..%2F..%2Fsecret.webp", 404),
        ("dnd/images/full/%2e%2e", 422),
        ("dnd/images/full/" + "0" * 32 + ".png", 422),
        ("dnd/images/thumbnails/" + "A" * 32 + ".webp", 422),
    ],
)
def test_stored_paths_are_validated(client: TestClient, path: str, status: int) -> None:
    generate(client)
    assert_error(client.get(f"/{path}"), status)


def test_stored_paths_redirect_to_presigned_urls_on_s3(
    app_factory: Any, make_settings: Any, s3_endpoint: str
) -> None:
    import httpx

    from tests.apps.dnd.conftest import reset_app

    settings = make_settings(
        storage_backend="s3",
        storage_bucket=_bucket(s3_endpoint),
        aws_endpoint_url=s3_endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    client = app_factory(settings)
    reset_app(client)
    image = generate(client).json()
    response = client.get(f"/{image['storage_path_thumbnail']}", follow_redirects=False)
    assert response.status_code == 307
    location = response.headers["location"]
    assert location.startswith(s3_endpoint) and "Signature" in location
    served = httpx.get(location)
    assert served.status_code == 200
    assert served.content == client.get(f"/api/v1/images/{image['id']}/thumbnail").content
    assert httpx.get(location, headers={"If-None-Match": served.headers["etag"]}).status_code == 304
