"""Reconstruction jobs through the API: ownership, status, results, cancel, delete, events.

The full pipeline on real photos is in `test_pipeline.py`; here jobs fail fast (featureless
photos) or are finished by a builder, so every endpoint is covered on both backends.
"""

from __future__ import annotations

import io
import time
import uuid
import zipfile
from typing import Any

import numpy as np
import pytest
import trimesh
from fastapi.testclient import TestClient
from PIL import Image
from starlette.websockets import WebSocketDisconnect

from tests.apps.bestiary.conftest import CALLERS, Cast, box_glb, png, stored_keys, wait_for
from tests.builders import assert_error, close_code_within, register_user, run_db
from worldbase.apps.bestiary.models import ReconstructionJob
from worldbase.apps.bestiary.reconstruction import RECONSTRUCT_KIND, result_key
from worldbase.core import users
from worldbase.core.db import utcnow
from worldbase.core.models import Job, JobStatus


def _plain(shade: int, size: tuple[int, int] = (160, 120)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (shade, shade, shade)).save(buffer, "JPEG")
    return buffer.getvalue()


def upload(cast: Cast, images: list[bytes], who: str = "owner") -> str:
    files = [("files", (f"{i}.jpg", data, "image/jpeg")) for i, data in enumerate(images)]
    response = cast.client.post("/api/reconstruct/upload", files=files, headers=cast.as_(who))
    assert response.status_code == 201, response.text
    return str(response.json()["upload_id"])


def start(cast: Cast, upload_id: str, who: str = "owner", **options: Any) -> str:
    body = {"upload_id": upload_id, "options": options}
    response = cast.client.post("/api/reconstruct/process", json=body, headers=cast.as_(who))
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"
    return str(response.json()["job_id"])


def finished_job(cast: Cast, who: str = "owner") -> str:
    """A completed reconstruction (rows and stored mesh) without running the pipeline."""
    client = cast.client
    owner_id = uuid.UUID(cast.users[who]["id"])
    job_id = uuid.uuid4()
    storage = client.app.state.services.storage  # type: ignore[attr-defined]
    client.portal.call(storage.put, result_key(job_id), box_glb())  # type: ignore[union-attr]

    async def insert(session: Any) -> None:
        now = utcnow()
        session.add(
            Job(
                id=job_id,
                kind=RECONSTRUCT_KIND,
                status=JobStatus.succeeded,
                progress=1.0,
                params={},
                owner_id=owner_id,
                attempts=1,
                max_attempts=2,
                cancel_requested=False,
                started_at=now,
                finished_at=now,
            )
        )
        await session.flush()
        session.add(
            ReconstructionJob(
                id=job_id,
                owner_id=owner_id,
                options={"quality": "medium"},
                stage="completed",
                log="[completed] stored",
                result_path=result_key(job_id),
                stats={"registered_images": 24},
            )
        )
        await session.commit()

    run_db(client, insert)
    return str(job_id)


def test_featureless_photos_fail_with_a_reason(cast: Cast) -> None:
    job_id = start(cast, upload(cast, [_plain(90 + 20 * i) for i in range(4)]))
    status = wait_for(cast.client, f"/api/reconstruct/status/{job_id}", cast.as_("owner"))
    assert status["status"] == "failed", status
    assert "texture" in status["error"] and status["stage"] == "features"
    assert status["log"][-1].startswith("[features] failed: The photos have almost no texture")
    assert any("extracting SIFT features" in line for line in status["log"])
    assert status["result_url"] is None
    result = cast.client.get(f"/api/reconstruct/result/{job_id}", headers=cast.as_("owner"))
    assert "failed" in assert_error(result, 409)["message"]


@pytest.mark.parametrize("who", CALLERS)
def test_jobs_and_results_belong_to_their_owner(cast: Cast, who: str) -> None:
    job_id = finished_job(cast)
    character = cast.character()
    client, headers = cast.client, cast.as_(who)
    status = client.get(f"/api/reconstruct/status/{job_id}", headers=headers)
    glb = client.get(f"/api/reconstruct/result/{job_id}", headers=headers)
    obj = client.get(f"/api/reconstruct/result/{job_id}?format=obj", headers=headers)
    attach = client.post(
        f"/api/reconstruct/result/{job_id}/attach",
        json={"character_id": character["id"]},
        headers=headers,
    )
    cancel = client.post(f"/api/reconstruct/{job_id}/cancel", headers=headers)
    if who in ("owner", "admin"):
        assert status.status_code == 200 and status.json()["status"] == "completed"
        assert status.json()["progress"] == 100
        assert status.json()["result_url"] == f"/api/reconstruct/result/{job_id}"
        assert glb.headers["content-type"] == "model/gltf-binary"
        mesh = trimesh.load(io.BytesIO(glb.content), file_type="glb", force="mesh")
        assert sorted(mesh.extents.round(3)) == [0.5, 1.0, 2.0]
        assert "reconstruction.obj" in zipfile.ZipFile(io.BytesIO(obj.content)).namelist()
        assert_error(cancel, 409)  # already finished
        if who == "admin":
            assert attach.status_code == 200 and attach.json()["model_url"]
        else:
            assert_error(attach, 403)  # character writes are for admins
        deleted = client.delete(f"/api/reconstruct/{job_id}", headers=headers)
        assert deleted.status_code == 204
        assert_error(client.get(f"/api/reconstruct/status/{job_id}", headers=headers), 404)
        assert stored_keys(client, "bestiary/reconstructions/") == []
        return
    code = 401 if who == "anonymous" else 404
    for response in (status, glb, obj, attach, cancel):
        assert_error(response, code)
    assert_error(client.delete(f"/api/reconstruct/{job_id}", headers=headers), code)
    owner = client.get(f"/api/reconstruct/status/{job_id}", headers=cast.as_("owner"))
    assert owner.status_code == 200


def test_processing_needs_your_own_upload_and_valid_options(cast: Cast) -> None:
    upload_id = upload(cast, [png(seed=i) for i in range(3)])
    client, user = cast.client, cast.as_("owner")

    def process(body: Any, who: str = "owner") -> Any:
        return client.post("/api/reconstruct/process", json=body, headers=cast.as_(who))

    assert_error(process({"upload_id": upload_id}, who="other"), 404)
    assert_error(process({"upload_id": upload_id}, who="anonymous"), 401)
    assert_error(process({"upload_id": str(uuid.uuid4())}), 404)
    for body in (
        {},
        {"upload_id": "nope"},
        {"upload_id": upload_id, "options": {"quality": "ultra"}},
        {"upload_id": upload_id, "options": {"max_image_size": 10}},
        {"upload_id": upload_id, "options": {"meshing": "marching"}},
        {"upload_id": upload_id, "options": {"colour": True}},
    ):
        assert_error(process(body), 422)
    assert_error(client.get(f"/api/reconstruct/status/{uuid.uuid4()}", headers=user), 404)
    assert_error(client.get("/api/reconstruct/status/not-a-uuid", headers=user), 422)
    job_id = finished_job(cast)
    bad_format = client.get(f"/api/reconstruct/result/{job_id}?format=fbx", headers=user)
    assert_error(bad_format, 422)
    admin = cast.as_("admin")
    missing = client.post(
        f"/api/reconstruct/result/{job_id}/attach", json={"character_id": 999999}, headers=admin
    )
    assert_error(missing, 404)


def _noise(seed: int) -> bytes:
    pixels = (np.random.default_rng(seed).random((240, 320, 3)) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_running_job_can_be_cancelled(cast: Cast) -> None:
    job_id = start(cast, upload(cast, [_noise(i) for i in range(30)]), quality="high")
    client, user = cast.client, cast.as_("owner")
    deadline = time.monotonic() + 30
    while (
        client.get(f"/api/reconstruct/status/{job_id}", headers=user).json()["status"] == "queued"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    response = client.post(f"/api/reconstruct/{job_id}/cancel", headers=user)
    assert response.status_code == 200, response.text
    status = wait_for(client, f"/api/reconstruct/status/{job_id}", user)
    assert status["status"] == "cancelled", status
    assert status["stage"] == "cancelled"


def test_events_stream_the_job_to_its_owner(cast: Cast, client: TestClient) -> None:
    job_id = start(cast, upload(cast, [_plain(60 + 30 * i) for i in range(3)]))
    token = cast.tokens["owner"]
    events = []
    with client.websocket_connect(f"/api/reconstruct/{job_id}/events?token={token}") as ws:
        first = ws.receive_json()
        assert first["type"] == "status" and first["job_id"] == job_id
        events.append(first)
        while True:
            try:
                events.append(ws.receive_json())
            except WebSocketDisconnect:
                break
    assert events[-1]["type"] == "job" and events[-1]["status"] == "failed"
    progress = [e for e in events if e["type"] == "reconstruct.progress"]
    if events[0]["status"] in ("queued", "running"):
        assert progress and all(0 <= e["progress"] <= 100 for e in progress)
    for token, code in ((cast.tokens["other"], 4404), ("", 4401), ("garbage", 4401)):
        url = f"/api/reconstruct/{job_id}/events?token={token}"
        with client.websocket_connect(url) as ws, pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == code
    admin = cast.tokens["admin"]
    with client.websocket_connect(f"/api/reconstruct/{job_id}/events?token={admin}") as ws:
        assert ws.receive_json()["status"] == "failed"


@pytest.mark.parametrize("who", CALLERS)
def test_uploads_are_processed_and_deleted_by_their_owner_or_an_admin(cast: Cast, who: str) -> None:
    upload_id = upload(cast, [_plain(50 + 40 * i) for i in range(3)])
    client, headers = cast.client, cast.as_(who)
    process = client.post(
        "/api/reconstruct/process", json={"upload_id": upload_id}, headers=headers
    )
    if who in ("owner", "admin"):
        assert process.status_code == 202, process.text
        job_id = process.json()["job_id"]
        busy = client.delete(f"/api/reconstruct/upload/{upload_id}", headers=headers)
        if busy.status_code == 409:  # the job has not failed yet
            wait_for(client, f"/api/reconstruct/status/{job_id}", headers)
            busy = client.delete(f"/api/reconstruct/upload/{upload_id}", headers=headers)
        assert busy.status_code == 204, busy.text
        assert stored_keys(client, f"bestiary/uploads/{upload_id}/") == []
        # The job stays readable by its owner (the one who started it) without its upload.
        status = client.get(f"/api/reconstruct/status/{job_id}", headers=headers).json()
        assert status["upload_id"] is None
        gone = client.delete(f"/api/reconstruct/upload/{upload_id}", headers=headers)
        assert_error(gone, 404)
        return
    code = 401 if who == "anonymous" else 404
    assert_error(process, code)
    assert_error(client.delete(f"/api/reconstruct/upload/{upload_id}", headers=headers), code)
    assert len(stored_keys(client, f"bestiary/uploads/{upload_id}/")) == 3


def test_events_close_when_the_account_is_disabled(client: TestClient) -> None:
    """A disabled account's job socket closes with 4403 within a second (issue 18, item 5)."""
    user, token = register_user(client)  # its own user: the module's cast stays enabled
    user_id = uuid.UUID(user["id"])
    hub = client.app.state.services.hub  # type: ignore[attr-defined]
    cache = client.app.state.services.cache  # type: ignore[attr-defined]

    async def insert_job(session: Any) -> uuid.UUID:
        # Rows alone: no queue message, so the job stays queued and its socket open.
        job = Job(
            kind=RECONSTRUCT_KIND, params={}, owner_id=user_id, status=JobStatus.queued,
            progress=0.0, attempts=0, max_attempts=1, cancel_requested=False,
        )  # fmt: skip
        session.add(job)
        await session.flush()
        session.add(ReconstructionJob(id=job.id, owner_id=user_id, options={}, stage="queued"))
        await session.commit()
        return job.id

    async def disable(session: Any) -> None:
        found = await users.get_or_raise(session, user_id=user_id)
        await users.deactivate(session, user=found, hub=hub, cache=cache)

    job_id = run_db(client, insert_job)
    with client.websocket_connect(f"/api/reconstruct/{job_id}/events?token={token}") as ws:
        assert ws.receive_json()["type"] == "status"
        run_db(client, disable)
        assert close_code_within(ws) == 4403
