"""Clerk sign-in against `worldbase serve`: the fixture every `/api/v1` test stands on."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from tests.apps.samsyn_v1.conftest import ClerkKeys, ClerkUser, signed_in


def test_a_clerk_session_token_signs_in_and_provisions_the_user(
    api: httpx.Client, owner: ClerkUser
) -> None:
    me = signed_in(api, owner)
    assert me["email"] == owner.email
    # The same identity again is the same account, not a second one.
    assert signed_in(api, owner)["id"] == me["id"]


def test_expired_foreign_and_garbled_tokens_are_401(
    api: httpx.Client, make_user: Callable[..., ClerkUser]
) -> None:
    user = make_user()
    expired = user.token(exp=int(time.time()) - 3600)
    foreign = ClerkUser(keys=ClerkKeys(), sub=user.sub).token()
    wrong_issuer = user.token(iss="https://clerk.attacker.test")
    for token in (expired, foreign, wrong_issuer, "not-a-jwt"):
        answer = api.get("/api/users/me", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401, (token[:20], answer.text)
