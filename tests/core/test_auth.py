"""Identity: register/login/me, bearer tokens of every kind, admin rights, the start-up admin."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient
from pwdlib import PasswordHash

from tests.builders import (
    DEFAULT_PASSWORD,
    assert_error,
    auth_headers,
    jwks_server,
    register_user,
    run_db,
)
from tests.conftest import free_port, truncate_all
from worldbase.core import users
from worldbase.core.auth import AdminUser, OptionalUser
from worldbase.core.models import User
from worldbase.settings import Settings

TEST_SECRET = "test-secret-" + "x" * 40  # conftest's base_settings


def fresh_client(app_factory: Callable[[Settings], TestClient], settings: Settings) -> TestClient:
    client = app_factory(settings)
    client.portal.call(truncate_all, client.app.state.services)  # type: ignore[union-attr, attr-defined]
    return client


def reset_limits(client: TestClient) -> TestClient:
    # The served run shares one Redis among tests: start from fresh login counts.
    services: Any = client.app.state.services  # type: ignore[attr-defined]
    client.portal.call(services.limiter.reset)  # type: ignore[union-attr]
    return client


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made_token(header: dict[str, Any], claims: dict[str, Any], key: bytes | None) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = (
        b"" if key is None else hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    )
    return f"{signing_input}.{b64(signature)}"


def in_minutes(minutes: float) -> int:
    return int((datetime.now(UTC) + timedelta(minutes=minutes)).timestamp())


# --- Register, login, me ----------------------------------------------------------------------


def test_register_login_and_me(client: TestClient) -> None:
    response = client.post(
        "/api/auth/register",
        json={"email": "Ada@Example.ORG", "password": "correct horse battery", "name": "Ada"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    user = body["user"]
    assert user["email"] == "ada@example.org"
    assert user["name"] == "Ada" and user["is_admin"] is False
    assert set(user) == {"id", "email", "name", "avatar_url", "is_admin", "created_at"}

    me = client.get("/api/auth/me", headers=auth_headers(body["access_token"]))
    assert me.status_code == 200 and me.json() == user

    claims = jwt.decode(body["access_token"], TEST_SECRET, algorithms=["HS256"])
    assert claims["sub"] == user["id"] and claims["iss"] == "worldbase"
    assert claims["typ"] == "access" and claims["jti"]
    assert claims["exp"] - claims["iat"] == 60 * 60

    as_json = client.post(
        "/api/auth/login", json={"email": "ADA@example.org", "password": "correct horse battery"}
    )
    assert as_json.status_code == 200, as_json.text
    assert as_json.json()["expires_in"] == 3600 and as_json.json()["user"] == user

    as_form = client.post(
        "/api/auth/login",
        data={"username": "ada@example.org", "password": "correct horse battery", "scope": ""},
    )
    assert as_form.status_code == 200, as_form.text
    token = as_form.json()["access_token"]
    assert client.get("/api/auth/me", headers=auth_headers(token)).json()["id"] == user["id"]


def test_duplicate_email_is_409(client: TestClient) -> None:
    register_user(client, "taken@example.org")
    response = client.post(
        "/api/auth/register", json={"email": "TAKEN@example.org", "password": "another password"}
    )
    assert_error(response, 409)


REGISTER_BAD_INPUT: list[tuple[dict[str, Any], str]] = [
    ({"email": "not-an-email", "password": "long enough"}, "email"),
    ({"email": "a@example.org", "password": "short"}, "password"),
    ({"email": "a@example.org", "password": "x" * 129}, "password"),
    ({"email": "a@example.org", "password": "long enough", "is_admin": True}, "is_admin"),
    ({"email": 123, "password": "long enough"}, "email"),
    ({"email": "a@example.org", "password": ["long enough"]}, "password"),
    ({"email": "a@example.org"}, "password"),
]


def test_register_rejects_bad_input(client: TestClient) -> None:
    for body, field in REGISTER_BAD_INPUT:
        error = assert_error(client.post("/api/auth/register", json=body), 422)
        assert ["body", field] in [item["loc"] for item in error["detail"]], (body, error)
        assert field in error["message"]
    # None of them made a user.
    assert (
        client.post(
            "/api/auth/login", json={"email": "a@example.org", "password": "long enough"}
        ).status_code
        == 401
    )


def test_register_rejects_malformed_json(client: TestClient) -> None:
    response = client.post(
        "/api/auth/register",
        content=b'{"email": "a@example.org", "password": ',
        headers={"Content-Type": "application/json"},
    )
    error = assert_error(response, 422)
    assert error["detail"][0]["type"] == "json_invalid"


LOGIN_BAD_INPUT: list[tuple[dict[str, Any], list[str]]] = [
    ({"content": b"{not json", "headers": {"Content-Type": "application/json"}}, ["body"]),
    ({"json": {"password": "whatever"}}, ["body", "email"]),
    ({"json": {"email": "a@example.org", "password": "x", "extra": 1}}, ["body", "extra"]),
    ({"json": {"email": ["a"], "password": "whatever"}}, ["body", "email"]),
    ({"json": ["a@example.org", "whatever"]}, ["body"]),
    ({"data": {"password": "whatever"}}, ["body", "username"]),
]


def test_login_rejects_bad_input(client: TestClient) -> None:
    for kwargs, loc in LOGIN_BAD_INPUT:
        error = assert_error(client.post("/api/auth/login", **kwargs), 422)
        assert loc in [item["loc"] for item in error["detail"]], (kwargs, error)


def test_wrong_credentials_are_401_with_one_message(client: TestClient) -> None:
    register_user(client, "bob@example.org")
    wrong_password = client.post(
        "/api/auth/login", json={"email": "bob@example.org", "password": "not the password"}
    )
    unknown_email = client.post(
        "/api/auth/login", json={"email": "nobody@example.org", "password": "not the password"}
    )
    first = assert_error(wrong_password, 401)
    second = assert_error(unknown_email, 401)
    assert first["message"] == second["message"] == "Incorrect email or password"
    assert wrong_password.headers["WWW-Authenticate"] == "Bearer"


NOT_WEB_URLS = [
    "javascript:alert(1)",
    "JavaScript:alert(document.cookie)",
    "data:text/html,<script>alert(1)</script>",
    "file:///etc/passwd",
    "vbscript:msgbox(1)",
    "//evil.example.org/a.png",
    "https://" + "a" * 2048 + ".org",
]


def test_avatar_url_must_be_http_or_https(client: TestClient) -> None:
    _, token = register_user(client)
    for url in NOT_WEB_URLS:
        body = {"avatar_url": url}
        error = assert_error(
            client.patch("/api/auth/me", json=body, headers=auth_headers(token)), 422
        )
        assert ["body", "avatar_url"] in [item["loc"] for item in error["detail"]], url
    assert client.get("/api/auth/me", headers=auth_headers(token)).json()["avatar_url"] is None
    # Registration takes no avatar at all: the field is refused, not stored.
    email = f"{uuid.uuid4().hex[:8]}@example.org"
    body = {"email": email, "password": "correct horse battery", "avatar_url": NOT_WEB_URLS[0]}
    assert_error(client.post("/api/auth/register", json=body), 422)


def test_update_me(client: TestClient) -> None:
    user, token = register_user(client, name="Old name")
    response = client.patch(
        "/api/auth/me",
        json={"name": "New name", "avatar_url": "https://example.org/a.png"},
        headers=auth_headers(token),
    )
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "New name"
    # Fields left out stay as they are.
    response = client.patch("/api/auth/me", json={"name": "Newer"}, headers=auth_headers(token))
    assert response.json()["avatar_url"] == "https://example.org/a.png"
    me = client.get("/api/auth/me", headers=auth_headers(token)).json()
    assert me["name"] == "Newer" and me["id"] == user["id"]

    error = assert_error(
        client.patch("/api/auth/me", json={"is_admin": True}, headers=auth_headers(token)), 422
    )
    assert ["body", "is_admin"] in [item["loc"] for item in error["detail"]]
    assert_error(client.patch("/api/auth/me", json={"name": "Anon"}), 401)


def test_me_needs_a_bearer_token(client: TestClient) -> None:
    response = client.get("/api/auth/me")
    assert_error(response, 401)
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert_error(client.get("/api/auth/me", headers={"Authorization": "Basic YTpi"}), 401)


def test_login_is_rate_limited(
    app_factory: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> None:
    client = fresh_client(app_factory, make_settings(login_rate_limit="3/minute"))
    register_user(client, "limited@example.org")
    body = {"email": "limited@example.org", "password": DEFAULT_PASSWORD}
    statuses = [client.post("/api/auth/login", json=body).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    response = client.post("/api/auth/login", json=body)
    assert_error(response, 429)
    assert 0 < int(response.headers["Retry-After"]) <= 60


def test_register_is_rate_limited_by_default(
    app_factory: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> None:
    # The attack: sign-ups in a row from one client, each an argon2 hash and an account.
    default = Settings.model_fields["register_rate_limit"].default
    assert default == "5/minute"
    client = reset_limits(fresh_client(app_factory, make_settings(register_rate_limit=default)))
    statuses = [
        client.post(
            "/api/auth/register",
            json={"email": f"signup{i}@example.org", "password": DEFAULT_PASSWORD},
        ).status_code
        for i in range(6)
    ]
    assert statuses == [201] * 5 + [429]
    response = client.post(
        "/api/auth/register", json={"email": "late@example.org", "password": DEFAULT_PASSWORD}
    )
    assert_error(response, 429)
    assert 0 < int(response.headers["Retry-After"]) <= 60
    # Login keeps its own count: the limited client still signs in.
    body = {"email": "signup0@example.org", "password": DEFAULT_PASSWORD}
    assert client.post("/api/auth/login", json=body).status_code == 200


def test_inactive_user_is_403(client: TestClient) -> None:
    user, token = register_user(client, "gone@example.org")

    async def disable(session: Any) -> None:
        found = await users.get_or_raise(session, user_id=uuid.UUID(user["id"]))
        services = client.app.state.services  # type: ignore[attr-defined]
        await users.update(
            session, user=found, is_active=False, hub=services.hub, cache=services.cache
        )

    run_db(client, disable)
    assert_error(client.get("/api/auth/me", headers=auth_headers(token)), 403)
    login = client.post(
        "/api/auth/login", json={"email": "gone@example.org", "password": DEFAULT_PASSWORD}
    )
    assert_error(login, 403)


def test_login_upgrades_an_old_password_hash(client: TestClient) -> None:
    user, _ = register_user(client, "legacy@example.org")
    strong = PasswordHash.recommended().hash(DEFAULT_PASSWORD)  # other Argon2 parameters

    async def set_hash(session: Any, *, value: str) -> str | None:
        found = await users.get_or_raise(session, user_id=uuid.UUID(user["id"]))
        if value:
            found.password_hash = value
            await session.commit()
        return found.password_hash

    run_db(client, set_hash, value=strong)
    login = client.post(
        "/api/auth/login", json={"email": "legacy@example.org", "password": DEFAULT_PASSWORD}
    )
    assert login.status_code == 200, login.text
    upgraded = run_db(client, set_hash, value="")
    assert upgraded != strong and "m=19456,t=2,p=1" in upgraded


# --- Our own tokens and external HS256 tokens -----------------------------------------------------


def own_claims(user_id: str, **overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": user_id,
        "iss": "worldbase",
        "typ": "access",
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def test_bad_tokens_are_401(client: TestClient) -> None:
    user, _ = register_user(client)
    past = datetime.now(UTC) - timedelta(hours=1)
    tokens = {
        "expired": jwt.encode(own_claims(user["id"], exp=past), TEST_SECRET),
        "forged": jwt.encode(own_claims(user["id"]), "another-secret-" + "y" * 40),
        "alg none": hand_made_token({"alg": "none", "typ": "JWT"}, own_claims_json(user), None),
        "alg None": hand_made_token({"alg": "None"}, own_claims_json(user), None),
        "garbage": "not-a-token",
        "three garbage parts": "aaa.bbb.ccc",
        "missing sub": jwt.encode(own_claims(user["id"], sub=None), TEST_SECRET),
        "sub not a user id": jwt.encode(own_claims("12345"), TEST_SECRET),
        "unknown user": jwt.encode(own_claims(str(uuid.uuid4())), TEST_SECRET),
        "refresh type": jwt.encode(own_claims(user["id"], typ="refresh"), TEST_SECRET),
        "no expiry": jwt.encode(own_claims(user["id"], exp=None), TEST_SECRET),
        "HS384 not configured": jwt.encode(own_claims(user["id"]), TEST_SECRET, "HS384"),
    }
    for name, token in tokens.items():
        response = client.get("/api/auth/me", headers=auth_headers(token))
        assert response.status_code == 401, f"{name}: {response.text}"
        assert response.json()["status"] == "error"
        assert response.headers["WWW-Authenticate"] == "Bearer"
    # The control: the same claims, correctly signed, pass.
    good = jwt.encode(own_claims(user["id"]), TEST_SECRET)
    assert client.get("/api/auth/me", headers=auth_headers(good)).status_code == 200


def own_claims_json(user: dict[str, Any]) -> dict[str, Any]:
    return {"sub": user["id"], "iss": "worldbase", "typ": "access", "exp": in_minutes(5)}


def test_asymmetric_token_without_jwks_is_401(client: TestClient) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode({"sub": "user_x", "exp": in_minutes(5)}, key, algorithm="RS256")
    error = assert_error(client.get("/api/auth/me", headers=auth_headers(token)), 401)
    assert "JWKS_URL" in error["message"]


def test_external_hs256_token_provisions_a_user_once(client: TestClient) -> None:
    registered, _ = register_user(client, "player@example.org")
    claims = {
        "sub": "game-player-42",
        "email": "player@example.org",  # already someone else's: must not be taken over
        "name": "Player 42",
        "exp": in_minutes(5),
    }
    token = jwt.encode(claims, TEST_SECRET, algorithm="HS256")
    first = client.get("/api/auth/me", headers=auth_headers(token))
    assert first.status_code == 200, first.text
    assert first.json()["name"] == "Player 42"
    assert first.json()["email"] is None
    assert first.json()["id"] != registered["id"]
    second = client.get("/api/auth/me", headers=auth_headers(token))
    assert second.json()["id"] == first.json()["id"]

    found = run_db(client, users.get_by_subject, subject="game-player-42")
    assert isinstance(found, User) and str(found.id) == first.json()["id"]

    # Seed 000's tokens may carry no expiry; an expired one is still refused.
    no_exp = jwt.encode({"sub": "game-player-43"}, TEST_SECRET, algorithm="HS256")
    assert client.get("/api/auth/me", headers=auth_headers(no_exp)).status_code == 200
    expired = jwt.encode({"sub": "game-player-42", "exp": in_minutes(-60)}, TEST_SECRET)
    assert_error(client.get("/api/auth/me", headers=auth_headers(expired)), 401)


# --- JWKS (RS256 / ES256) ----------------------------------------------------------------------


class Keys:
    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.other_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        rsa_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.rsa.public_key()))
        ec_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.ec.public_key()))
        rsa_jwk.update(kid="rsa-1", use="sig", alg="RS256")
        ec_jwk.update(kid="ec-1", use="sig", alg="ES256")
        self.jwks = {"keys": [rsa_jwk, ec_jwk]}


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


@pytest.fixture(scope="module")
def jwks_url(keys: Keys) -> Iterator[str]:
    with jwks_server(keys.jwks) as url:
        yield url


def clerk_claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "sub": "user_" + uuid.uuid4().hex[:12],
        "iss": "https://clerk.example.org",
        "aud": "worldbase-tests",
        "exp": in_minutes(5),
        "iat": in_minutes(0),
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


@pytest.fixture
def jwks_client(
    app_factory: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
    jwks_url: str,
) -> TestClient:
    settings = make_settings(
        jwks_url=jwks_url, jwt_issuer="https://clerk.example.org", jwt_audience="worldbase-tests"
    )
    return fresh_client(app_factory, settings)


def test_rs256_and_es256_tokens_via_jwks(jwks_client: TestClient, keys: Keys) -> None:
    rs = jwt.encode(
        clerk_claims(sub="user_rsa", name="Rosa", picture="https://img.example.org/r.png"),
        keys.rsa,
        algorithm="RS256",
        headers={"kid": "rsa-1"},
    )
    es = jwt.encode(
        clerk_claims(sub="user_ec"), keys.ec, algorithm="ES256", headers={"kid": "ec-1"}
    )
    first = jwks_client.get("/api/auth/me", headers=auth_headers(rs))
    assert first.status_code == 200, first.text
    assert first.json()["name"] == "Rosa"
    assert first.json()["avatar_url"] == "https://img.example.org/r.png"
    again = jwks_client.get("/api/auth/me", headers=auth_headers(rs))
    assert again.json()["id"] == first.json()["id"]
    # A provider's picture that is not http(s) is dropped, the user still provisioned.
    bad = jwt.encode(
        clerk_claims(sub="user_js", picture="javascript:alert(1)"),
        keys.rsa,
        algorithm="RS256",
        headers={"kid": "rsa-1"},
    )
    provisioned = jwks_client.get("/api/auth/me", headers=auth_headers(bad))
    assert provisioned.status_code == 200 and provisioned.json()["avatar_url"] is None
    other = jwks_client.get("/api/auth/me", headers=auth_headers(es))
    assert other.status_code == 200, other.text
    assert other.json()["id"] != first.json()["id"]


def test_bad_jwks_tokens_are_401(jwks_client: TestClient, keys: Keys) -> None:
    public_pem = keys.rsa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    tokens = {
        "signed by another key": jwt.encode(
            clerk_claims(), keys.other_rsa, algorithm="RS256", headers={"kid": "rsa-1"}
        ),
        "unknown kid": jwt.encode(
            clerk_claims(), keys.other_rsa, algorithm="RS256", headers={"kid": "rsa-9"}
        ),
        "no kid": jwt.encode(clerk_claims(), keys.rsa, algorithm="RS256"),
        "wrong issuer": jwt.encode(
            clerk_claims(iss="https://evil.example.org"),
            keys.rsa,
            algorithm="RS256",
            headers={"kid": "rsa-1"},
        ),
        "no issuer": jwt.encode(
            clerk_claims(iss=None), keys.rsa, algorithm="RS256", headers={"kid": "rsa-1"}
        ),
        "wrong audience": jwt.encode(
            clerk_claims(aud="someone-else"), keys.rsa, algorithm="RS256", headers={"kid": "rsa-1"}
        ),
        "expired": jwt.encode(
            clerk_claims(exp=in_minutes(-60)), keys.rsa, algorithm="RS256", headers={"kid": "rsa-1"}
        ),
        "missing sub": jwt.encode(
            clerk_claims(sub=None), keys.rsa, algorithm="RS256", headers={"kid": "rsa-1"}
        ),
        "ES256 header on the RSA key": jwt.encode(
            clerk_claims(), keys.ec, algorithm="ES256", headers={"kid": "rsa-1"}
        ),
        # Algorithm confusion: the public key used as an HMAC secret.
        "HS256 with the public key": hand_made_token(
            {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}, clerk_claims(), public_pem
        ),
    }
    for name, token in tokens.items():
        response = jwks_client.get("/api/auth/me", headers=auth_headers(token))
        assert response.status_code == 401, f"{name}: {response.text}"
        assert response.json()["status"] == "error"
    good = jwt.encode(clerk_claims(), keys.rsa, algorithm="RS256", headers={"kid": "rsa-1"})
    assert jwks_client.get("/api/auth/me", headers=auth_headers(good)).status_code == 200


def test_unreachable_jwks_is_401(
    app_factory: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
    keys: Keys,
) -> None:
    url = f"http://127.0.0.1:{free_port()}/jwks.json"  # nothing listens there
    client = fresh_client(app_factory, make_settings(jwks_url=url))
    token = jwt.encode(clerk_claims(), keys.rsa, algorithm="RS256", headers={"kid": "rsa-1"})
    started = time.monotonic()
    error = assert_error(client.get("/api/auth/me", headers=auth_headers(token)), 401)
    assert "signing keys" in error["message"]
    assert time.monotonic() - started < 10


# --- Dependencies: admin and optional user ------------------------------------------------------


def test_require_admin_and_optional_user(client: TestClient) -> None:
    app = client.app

    @app.get("/_test/admin")  # type: ignore[attr-defined]
    async def admin_only(user: AdminUser) -> dict[str, str]:
        return {"id": str(user.id)}

    @app.get("/_test/maybe")  # type: ignore[attr-defined]
    async def maybe(user: OptionalUser) -> dict[str, str | None]:
        return {"id": str(user.id) if user else None}

    admin, admin_token = register_user(client, admin=True)
    assert admin["is_admin"] is True
    plain, plain_token = register_user(client)

    response = client.get("/_test/admin", headers=auth_headers(admin_token))
    assert response.status_code == 200 and response.json() == {"id": admin["id"]}
    assert_error(client.get("/_test/admin", headers=auth_headers(plain_token)), 403)
    assert_error(client.get("/_test/admin"), 401)

    assert client.get("/_test/maybe").json() == {"id": None}
    assert client.get("/_test/maybe", headers=auth_headers(plain_token)).json() == {
        "id": plain["id"]
    }
    assert_error(client.get("/_test/maybe", headers=auth_headers("garbage")), 401)


# --- Start-up admin ---------------------------------------------------------------------------


def test_admin_from_settings_is_created_then_updated(
    app_factory: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> None:
    email = f"root-{uuid.uuid4().hex[:8]}@example.org"
    first = reset_limits(
        app_factory(
            make_settings(worldbase_admin_email=email, worldbase_admin_password="first password")
        )
    )
    login = first.post("/api/auth/login", json={"email": email, "password": "first password"})
    assert login.status_code == 200, login.text
    assert login.json()["user"]["is_admin"] is True

    second = app_factory(
        make_settings(worldbase_admin_email=email.upper(), worldbase_admin_password="second pw!")
    )
    old = second.post("/api/auth/login", json={"email": email, "password": "first password"})
    assert_error(old, 401)
    new = second.post("/api/auth/login", json={"email": email, "password": "second pw!"})
    assert new.status_code == 200 and new.json()["user"]["id"] == login.json()["user"]["id"]


def test_admin_from_settings_promotes_an_existing_user(
    app_factory: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> None:
    email = f"promoted-{uuid.uuid4().hex[:8]}@example.org"
    plain = reset_limits(app_factory(make_settings()))
    user, _ = register_user(plain, email)
    assert user["is_admin"] is False
    promoted = app_factory(
        make_settings(worldbase_admin_email=email, worldbase_admin_password=DEFAULT_PASSWORD)
    )
    login = promoted.post("/api/auth/login", json={"email": email, "password": DEFAULT_PASSWORD})
    assert login.status_code == 200, login.text
    assert login.json()["user"]["is_admin"] is True and login.json()["user"]["id"] == user["id"]


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"public_metadata": {"isAdmin": True}}, True),
        ({"publicMetadata": {"isAdmin": True}}, True),
        ({"public_metadata": {"isAdmin": "true"}}, False),
        ({"public_metadata": {}}, False),
        ({"public_metadata": "isAdmin"}, None),
        ({"unsafe_metadata": {"isAdmin": True}}, None),
        ({}, None),
    ],
)
def test_admin_claim_reads_only_the_configured_metadata(
    claims: dict[str, Any], expected: bool | None
) -> None:
    assert users.admin_claim(claims, Settings().jwt_admin_claim) is expected
    assert users.admin_claim(claims, "") is None  # an empty setting turns the flag off


def test_external_token_grants_and_revokes_admin(client: TestClient) -> None:
    def me(**claims: Any) -> dict[str, Any]:
        base = {"sub": "game-admin-7", "exp": in_minutes(5)}
        token = jwt.encode(base | claims, TEST_SECRET, algorithm="HS256")
        response = client.get("/api/auth/me", headers=auth_headers(token))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    assert me()["is_admin"] is False
    assert me(public_metadata={"isAdmin": True})["is_admin"] is True
    assert me()["is_admin"] is True  # a token silent on it keeps the stored flag
    assert me(public_metadata={"role": "player"})["is_admin"] is False


def test_admin_claim_path_is_configurable(
    app_factory: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> None:
    client = app_factory(make_settings(jwt_admin_claim="app.roles.admin"))
    claims = {"sub": "game-admin-8", "exp": in_minutes(5)}
    for extra, expected in (
        ({"public_metadata": {"isAdmin": True}}, False),
        ({"app": {"roles": {"admin": True}}}, True),
    ):
        token = jwt.encode(claims | extra, TEST_SECRET, algorithm="HS256")
        response = client.get("/api/auth/me", headers=auth_headers(token))
        assert response.json()["is_admin"] is expected, extra
