"""Schema fuzzing of every operation in /openapi.json, anonymous and signed in (issue 18, item 11).

Bounded: a fixed seed, a few examples per operation, no shrinking. It must find nothing: no
5xx, every status code documented, every body conforming to its declared schema.
"""

from __future__ import annotations

import base64
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, seed, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from tests.conftest import base_settings
from tests.rasters import make_cog

MAX_EXAMPLES = 4
SEED = 18_2025
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]

pytestmark = pytest.mark.slow

_stats: dict[str, Any] = {"cases": 0, "operations": set(), "started": None}


@pytest.fixture(scope="module")
def fuzz_app(
    tmp_path_factory: pytest.TempPathFactory,
    served_overrides: dict[str, Any],
    migrated_served: None,
) -> Iterator[Any]:
    """The app on the current backend; schemathesis runs its lifespan and every request on one
    event loop of its own, so no TestClient (and no second loop) touches it."""
    from worldbase.app import create_app

    root = tmp_path_factory.mktemp("fuzz")
    settings_ = base_settings(
        root / "data",
        **served_overrides,
        # Configured as after `make run`, so that "not configured" 503s are not what is tested.
        habitat_raster_url=str(make_cog(root / "rasters" / "habitats.tif", count=1)),
        clerk_webhook_secret="whsec_"
        + base64.b64encode(b"fuzz-secret-32-bytes-long-enough").decode(),
    )
    app = create_app(settings_)
    _stats["started"] = time.monotonic()
    yield app
    asgi.shutdown_lifespans()
    elapsed = time.monotonic() - _stats["started"]
    print(
        f"\nschemathesis: {len(_stats['operations'])} operation runs, {_stats['cases']} cases, "
        f"{elapsed:.1f} s"
    )


@pytest.fixture(scope="module")
def bearer(fuzz_app: Any) -> str:
    """A registered user's token, made through the API like a client would."""
    with asgi.get_client(fuzz_app) as session:
        response = session.post(
            "/api/auth/register",
            json={"email": "fuzzer@example.org", "password": "correct horse battery"},
        )
    assert response.status_code == 201, response.text
    return str(response.json()["access_token"])


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
)


def _run(app: Any, case: Any, headers: dict[str, str] | None) -> None:
    _stats["cases"] += 1
    _stats["operations"].add((case.operation.label, bool(headers)))
    case.call_and_validate(app=app, headers=headers, checks=CHECKS)


@schema.parametrize()
@_FUZZ_SETTINGS
@seed(SEED)
def test_anonymous(case: Any, fuzz_app: Any) -> None:
    _run(fuzz_app, case, None)


@schema.parametrize()
@_FUZZ_SETTINGS
@seed(SEED)
def test_signed_in(case: Any, fuzz_app: Any, bearer: str) -> None:
    _run(fuzz_app, case, {"Authorization": f"Bearer {bearer}"})
