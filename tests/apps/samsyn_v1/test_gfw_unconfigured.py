"""`/api/v1/gfw/...` on a server without `GFW_API_TOKEN`: 503 saying what to set."""

from __future__ import annotations

import httpx

from tests.apps.samsyn_v1.conftest import ClerkUser
from tests.apps.samsyn_v1.test_gfw import PATH, QUERY
from tests.builders import assert_error


def test_without_a_token_tiles_are_503(api: httpx.Client, owner: ClerkUser) -> None:
    # A query of its own: with Redis, tiles another module's server fetched are shared.
    query = QUERY | {"date-range": "2019-01-01,2019-12-31"}
    for headers in ({}, owner.headers):
        body = assert_error(api.get(f"{PATH}/1/0/0", params=query, headers=headers), 503)
        assert "GFW_API_TOKEN" in body["message"]
    # Bad tiles are still the caller's 422, before anything else.
    assert_error(api.get(f"{PATH}/30/0/0", params=query), 422)
    health = api.get("/api/v1/gfw/health")
    assert health.json() == {"status": "not_configured", "configured": False}
