"""SamSyn's `/api/v1` contract, checked against a real `worldbase serve`.

One server per test module (on the current backend: SQLite and local files, or PostGIS,
Redis and S3), signed in the way SamSyn's frontend signs in: Clerk-style RS256 session
tokens whose keys the server fetches from a JWKS on loopback. Every test makes its own
users (a fresh Clerk `sub` each), so tests need no truncation between them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.builders import jwks_server
from tests.conftest import base_settings, free_port, wait_for_port

CLI = "from worldbase.cli import app; app()"  # `worldbase ...`, on this interpreter
CLERK_ISSUER = "https://clerk.worldbase.test"
KEY_ID = "clerk-test-1"


class ClerkKeys:
    """An RSA key pair and its JWKS document, as Clerk publishes at `/.well-known/jwks.json`."""

    def __init__(self) -> None:
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        jwk.update(kid=KEY_ID, use="sig", alg="RS256")
        self.jwks = {"keys": [jwk]}

    def token(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.private, algorithm="RS256", headers={"kid": KEY_ID})


@pytest.fixture(scope="session")
def clerk_keys() -> ClerkKeys:
    return ClerkKeys()


@pytest.fixture(scope="session")
def jwks_url(clerk_keys: ClerkKeys) -> Iterator[str]:
    with jwks_server(clerk_keys.jwks) as url:
        yield url


def _env_name(setting: str) -> str:
    return setting.upper()


@pytest.fixture(scope="module")
def v1_env() -> dict[str, str]:
    """Extra environment for this module's server (a module overrides it: an allow-list,
    a GFW token, a fake upstream)."""
    return {}


@dataclass
class V1Server:
    base_url: str
    log: Path

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@pytest.fixture(scope="module")
def v1_server(
    tmp_path_factory: pytest.TempPathFactory,
    served_overrides: dict[str, Any],
    migrated_served: None,
    jwks_url: str,
    v1_env: dict[str, str],
) -> Iterator[V1Server]:
    """`worldbase migrate` then `worldbase serve` on loopback, as the README runs them."""
    tmp = tmp_path_factory.mktemp("v1-serve")
    # The same values the in-process tests use (rate limits, no schedules), as environment.
    settings = base_settings(tmp / "data", **served_overrides)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORLDBASE_", "DATABASE_"))}
    env.pop("REDIS_URL", None)
    for name in (
        "worldbase_env",
        "jwt_secret",
        "register_rate_limit",
        "worldbase_max_heavy_jobs_per_user",
        *served_overrides,
    ):
        value = getattr(settings, name)
        if value is not None:
            env[_env_name(name)] = str(value).lower() if isinstance(value, bool) else str(value)
    env.update(
        WORLDBASE_DATA_DIR=str(tmp / "data"),
        WORLDBASE_PERIODIC_JOBS="false",
        WORLDBASE_INLINE_WORKER="true",
        LOG_JSON="false",
        JWKS_URL=jwks_url,
        JWT_ISSUER=CLERK_ISSUER,
    )
    env.update(v1_env)
    log = tmp / "serve.log"
    with log.open("wb") as out:
        subprocess.run(
            [sys.executable, "-c", CLI, "migrate"],
            env=env,
            cwd=tmp,
            check=True,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    port = free_port()
    out = log.open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=tmp,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    server = V1Server(base_url=f"http://127.0.0.1:{port}", log=log)
    try:
        try:
            wait_for_port(port, timeout=90)
        except TimeoutError:
            raise AssertionError(server.tail()) from None
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        out.close()


@dataclass
class ClerkUser:
    """A person signed in through Clerk: a fresh `sub`, an e-mail, a token for each request."""

    keys: ClerkKeys
    sub: str = field(default_factory=lambda: "user_" + uuid.uuid4().hex[:24])
    email: str = ""
    name: str = "Test Person"
    is_admin: bool = False

    def __post_init__(self) -> None:
        if not self.email:
            self.email = f"{self.sub.lower()}@example.org"

    def token(self, **overrides: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": self.sub,
            "iss": CLERK_ISSUER,
            "azp": "http://localhost:3000",
            "sid": "sess_" + uuid.uuid4().hex[:16],
            "iat": now,
            "nbf": now - 5,
            "exp": now + 300,
            # SamSyn's Clerk session template adds these (the frontend needs the e-mail
            # to share maps; the admin flag is Clerk's public metadata).
            "email": self.email,
            "name": self.name,
            "public_metadata": {"isAdmin": True} if self.is_admin else {},
        }
        claims.update(overrides)
        return self.keys.token({k: v for k, v in claims.items() if v is not None})

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}"}


@pytest.fixture
def make_user(clerk_keys: ClerkKeys) -> Callable[..., ClerkUser]:
    """`make_user(name="Ann", is_admin=True)`: a new Clerk identity."""

    def build(**kwargs: Any) -> ClerkUser:
        return ClerkUser(keys=clerk_keys, **kwargs)

    return build


@pytest.fixture
def owner(make_user: Callable[..., ClerkUser]) -> ClerkUser:
    return make_user(name="Olive Owner")


@pytest.fixture
def stranger(make_user: Callable[..., ClerkUser]) -> ClerkUser:
    return make_user(name="Sam Stranger")


@pytest.fixture
def admin(make_user: Callable[..., ClerkUser]) -> ClerkUser:
    return make_user(name="Ada Admin", is_admin=True)


@pytest.fixture
def api(v1_server: V1Server) -> Iterator[httpx.Client]:
    """An HTTP client on the server; pass `headers=user.headers` to sign in."""
    with httpx.Client(base_url=v1_server.base_url, timeout=30) as client:
        yield client


def signed_in(api: httpx.Client, user: ClerkUser) -> dict[str, Any]:
    """Make the server know `user` (a token's first sight provisions the account, as
    SamSyn's webhook would); its user record as `/api/users/me` shows it."""
    answer = api.get("/api/users/me", headers=user.headers)
    assert answer.status_code == 200, answer.text
    me: dict[str, Any] = answer.json()
    return me


def created(
    api: httpx.Client, user: ClerkUser | None, path: str, body: dict[str, Any]
) -> dict[str, Any]:
    """POST `body` as `user` (None: anonymous) to a route that creates something (a seed
    `/api/...` route to set a scene up); the created object."""
    answer = api.post(path, json=body, headers=user.headers if user else {})
    assert answer.status_code in (200, 201), answer.text
    result: dict[str, Any] = answer.json()
    return result


def assert_error(answer: httpx.Response, status: int) -> dict[str, Any]:
    """`answer` is an error of `status` in the one error shape (SamSyn's frontend shows
    `message`); its body."""
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    assert body["status"] == "error" and body["code"] == status and body["message"], body
    return body
