"""Schema fuzzing of every operation in /openapi.json, anonymous and signed in (issue 18, item 11).

Bounded: a fixed seed, a few examples per operation, no shrinking. It must find nothing: no
5xx, every status code documented, every body conforming to its declared schema.
"""

from __future__ import annotations

import asyncio
import base64
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, seed, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from tests.apps.samsyn_v1.fake_gfw import TOKEN as GFW_TOKEN
from tests.apps.samsyn_v1.fake_gfw import FakeGfw, fake_gfw
from tests.conftest import base_settings
from worldbase.seeding import seed_demo_data

MAX_EXAMPLES = 4
SEED = 18_2025
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
# The in-process transport's read timeout. Schemathesis's own 10 s failed one CI run on a
# loaded 2-core machine (a 404 that waited behind the export jobs the fuzzer had started);
# the slowest request is printed at the end, so a real stall still shows as a failure here.
REQUEST_TIMEOUT = 60

pytestmark = pytest.mark.slow

_stats: dict[str, Any] = {"cases": 0, "operations": set(), "started": None, "slowest": (0.0, "")}


@pytest.fixture(scope="module")
def gfw() -> Iterator[FakeGfw]:
    with fake_gfw() as fake:
        yield fake


@pytest.fixture(scope="module")
def fuzz_app(
    tmp_path_factory: pytest.TempPathFactory,
    served_overrides: dict[str, Any],
    migrated_served: None,
    gfw: FakeGfw,
) -> Iterator[Any]:
    """The app on the current backend; schemathesis runs its lifespan and every request on one
    event loop of its own, so no TestClient (and no second loop) touches it."""
    from worldbase.app import create_app

    settings_ = base_settings(
        tmp_path_factory.mktemp("fuzz") / "data",
        **served_overrides,
        # No internet here: outside sources (the examples' public WMS, the demo's WMS layer)
        # are refused (403) instead of unreachable (502), so a 5xx is always ours.
        worldbase_source_policy="allowlist",
        # Configured as after `make run`, so that "not configured" 503s are not what is tested.
        clerk_webhook_secret="whsec_" + base64.b64encode(b"fuzz-secret-32-bytes-long!").decode(),
        # SamSyn's Global Fishing Watch proxy, in front of a fake GFW on loopback.
        gfw_api_token=GFW_TOKEN,
        gfw_api_url=gfw.url,
    )
    app = create_app(settings_)
    with asgi.get_client(app):  # starts the lifespan (and migrates an embedded database)
        pass
    # The demo data of `make run` (habitat raster, maps, characters, images, OSM objects), so
    # that reads find rows and lists have items to serialize.
    asyncio.run(seed_demo_data(settings_))
    _stats["started"] = time.monotonic()
    yield app
    asgi.shutdown_lifespans()
    elapsed = time.monotonic() - _stats["started"]
    print(
        f"\nschemathesis: {len(_stats['operations'])} operation runs, {_stats['cases']} cases, "
        f"{elapsed:.1f} s; slowest request {_stats['slowest'][0]:.1f} s ({_stats['slowest'][1]})"
    )


@pytest.fixture(scope="module")
def owned(fuzz_app: Any) -> dict[str, str]:
    """A registered user, made through the API like a client would, who owns a private map
    and a finished export job (so that their lists are not empty): token and ids."""
    with asgi.get_client(fuzz_app) as session:
        response = session.post(
            "/api/auth/register",
            json={"email": "fuzzer@example.org", "password": "correct horse battery"},
        )
        assert response.status_code == 201, response.text
        token = str(response.json()["access_token"])
        session.headers["Authorization"] = f"Bearer {token}"
        made = session.post("/api/maps", json={"name": "Fuzzed map"})
        assert made.status_code == 201, made.text
        character = session.get("/api/characters").json()["items"][0]
        body = {"character_id": character["id"], "format": "obj"}
        assert session.post("/api/export", json=body).status_code in (200, 201, 202)
        for _ in range(300):
            jobs = session.get("/api/jobs").json()["items"]
            if jobs and all(job["status"] not in ("queued", "running") for job in jobs):
                break
            time.sleep(0.1)
    return {"token": token, "map": made.json()["id"], "job": jobs[0]["id"]}


@pytest.fixture(scope="module")
def bearer(owned: dict[str, str]) -> str:
    return owned["token"]


def _openapi() -> dict[str, Any]:
    # Loaded at collection, so that each operation is its own test item (schemathesis's lazy
    # fixture loader relies on a pytest internal gone in pytest 9). The document does not
    # depend on the backend; the requests go to `fuzz_app`, built per backend.
    from worldbase.app import create_app

    with tempfile.TemporaryDirectory() as tmp:
        return create_app(base_settings(Path(tmp) / "data")).openapi()


schema = schemathesis.openapi.from_dict(_openapi())

_FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    print_blob=True,
    database=None,  # the same cases every run: no replay of earlier failures
)


def _run(app: Any, case: Any, headers: dict[str, str] | None) -> None:
    _stats["cases"] += 1
    _stats["operations"].add((case.operation.label, bool(headers)))
    started = time.monotonic()
    case.call_and_validate(app=app, headers=headers, checks=CHECKS, timeout=REQUEST_TIMEOUT)
    took = time.monotonic() - started
    if took > _stats["slowest"][0]:
        _stats["slowest"] = (took, case.operation.label)


@schema.parametrize()
@_FUZZ_SETTINGS
@seed(SEED)
def test_anonymous(case: Any, fuzz_app: Any) -> None:
    _run(fuzz_app, case, None)


# Operations that close the caller's own account: each of their cases signs in a user of
# its own, so that the shared fuzzing user (and `test_the_owners_own_objects`) survives them.
CLOSES_THE_ACCOUNT = {"DELETE /api/v1/users/me"}


def _throwaway_token(app: Any) -> str:
    with asgi.get_client(app) as session:
        email = f"fuzz-{uuid.uuid4().hex[:12]}@example.org"
        answer = session.post(
            "/api/auth/register", json={"email": email, "password": "correct horse battery"}
        )
        assert answer.status_code == 201, answer.text
        return str(answer.json()["access_token"])


@schema.parametrize()
@_FUZZ_SETTINGS
@seed(SEED)
def test_signed_in(case: Any, fuzz_app: Any, bearer: str) -> None:
    if case.operation.label in CLOSES_THE_ACCOUNT:
        bearer = _throwaway_token(fuzz_app)
    _run(fuzz_app, case, {"Authorization": f"Bearer {bearer}"})


def test_the_owners_own_objects(fuzz_app: Any, owned: dict[str, str]) -> None:
    """Random ids never hit a real row: these requests do, with the same checks (they found
    naive job timestamps and the undocumented 200 of inviting a collaborator again)."""
    headers = {"Authorization": f"Bearer {owned['token']}"}
    collaborators = schema["/api/maps/{id}/collaborators"]["POST"]
    invite = {"email": "friend@example.org", "permission": "view"}
    calls = [
        (schema["/api/jobs"]["GET"], {}, None, 200),
        (schema["/api/jobs/{job_id}"]["GET"], {"job_id": owned["job"]}, None, 200),
        (schema["/api/maps/{id}"]["GET"], {"id": owned["map"]}, None, 200),
        (collaborators, {"id": owned["map"]}, invite, 201),
        (collaborators, {"id": owned["map"]}, invite | {"permission": "edit"}, 200),
    ]
    for operation, path, body, expected in calls:
        kwargs: dict[str, Any] = {"path_parameters": path}
        if body is not None:
            kwargs["body"] = body
        case = operation.Case(**kwargs)
        response = case.call_and_validate(
            app=fuzz_app, headers=headers, checks=CHECKS, timeout=REQUEST_TIMEOUT
        )
        assert response.status_code == expected, (operation.label, response.text)
