"""Settings: seed env names, secrets, lists, URL normalisation, fail-fast checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port, wait_for_port
from worldbase.apps import registry
from worldbase.apps.dnd.settings import DndSettings
from worldbase.core.storage_backends import create_storage
from worldbase.core.storage_s3 import S3Storage
from worldbase.env_names import unknown_variable_warnings, warn_unknown_variables
from worldbase.settings import GCS_ENDPOINT, ConfigurationError, Settings


def make(tmp_path: Path, **values: object) -> Settings:
    return Settings(_env_file=None, worldbase_data_dir=tmp_path, **values)  # type: ignore[arg-type]


def test_embedded_secret_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = make(tmp_path).secret
    assert len(first) >= 40
    assert make(tmp_path).secret == first
    assert (tmp_path / "jwt_secret").stat().st_mode & 0o777 == 0o600


def test_production_refuses_to_start_without_secret(tmp_path: Path) -> None:
    settings = make(tmp_path, worldbase_env="production", database_url="postgresql://x@h/db")
    with pytest.raises(ConfigurationError, match="JWT_SECRET is not set"):
        settings.check()
    assert not (tmp_path / "jwt_secret").exists()


def test_production_needs_database_url(tmp_path: Path) -> None:
    settings = make(tmp_path, worldbase_env="production", jwt_secret="s" * 40)
    with pytest.raises(ConfigurationError, match="DATABASE_URL"):
        settings.check()


def test_seed_env_names_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://user:pw@db:5432/game_db")
    monkeypatch.setenv("CORS_ORIGINS", '["https://yourgame.com", "https://www.yourgame.com"]')
    monkeypatch.setenv("MAX_REQUESTS_PER_MINUTE", "12")
    monkeypatch.setenv("WORLDBASE_APPS", "dnd,osm")
    settings = make(tmp_path)
    assert settings.sqlalchemy_url == "postgresql+asyncpg://user:pw@db:5432/game_db"
    assert settings.cors_origins == ["https://yourgame.com", "https://www.yourgame.com"]
    assert settings.app(DndSettings).max_requests_per_minute == 12
    assert settings.worldbase_apps == ["dnd", "osm"]
    assert not settings.is_sqlite


def test_defaults_are_embedded(tmp_path: Path) -> None:
    settings = make(tmp_path)
    assert settings.is_sqlite
    assert settings.sqlalchemy_url == f"sqlite+aiosqlite:///{tmp_path.resolve() / 'worldbase.db'}"
    assert [spec.name for spec in registry.enabled(settings)] == [
        "habitats",
        "samsyn",
        "dnd",
        "osm",
        "bestiary",
    ]
    assert settings.inline_worker
    assert settings.local_storage_path == tmp_path.resolve() / "storage"


def test_unknown_app_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="unknown apps"):
        registry.enabled(make(tmp_path, worldbase_apps="dnd,nope"))


def test_s3_and_gcs_need_a_bucket(tmp_path: Path) -> None:
    for backend in ("s3", "gcs"):
        with pytest.raises(ConfigurationError, match="STORAGE_BUCKET"):
            make(tmp_path, storage_backend=backend, jwt_secret="x" * 40).check()


def test_dotenv_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("WEBP_QUALITY=70\nREDIS_URL=redis://127.0.0.1:6379/3\n")
    monkeypatch.chdir(tmp_path)
    settings = Settings(worldbase_data_dir=tmp_path)  # type: ignore[call-arg]
    assert settings.webp_quality == 70
    assert settings.redis_url == "redis://127.0.0.1:6379/3"
    assert not settings.inline_worker


def test_other_seed_env_names_are_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Seed 004's and seed 003's own names, exactly as their .env files write them."""
    (tmp_path / ".env").write_text(
        "NODE_ENV=development\n"
        "STORAGE_TYPE=s3  # or 'local'\n"
        "AWS_BUCKET=bestiary-models\n"
        "QUEUE_NAME=photogrammetry\n"
        "QUEUE_CONCURRENCY=4\n"
        "CORS_ORIGIN=http://localhost:3000\n"
        "DEBUG=True\n"
        "ALLOWED_HOSTS=localhost,127.0.0.1\n"
    )
    monkeypatch.chdir(tmp_path)
    settings = Settings(worldbase_data_dir=tmp_path)  # type: ignore[call-arg]
    assert settings.worldbase_env == "development"
    assert settings.storage_backend == "s3"
    assert settings.storage_bucket == "bestiary-models"
    assert settings.worldbase_namespace == "photogrammetry"
    assert settings.worldbase_worker_threads == 4
    assert settings.cors_origins == ["http://localhost:3000"]
    assert settings.debug is True
    assert settings.log_level == "DEBUG"
    assert settings.allowed_hosts == ["localhost", "127.0.0.1"]
    assert warn_unknown_variables(tmp_path / ".env") == []


def test_image_storage_dir_is_the_local_storage_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seed 002's IMAGE_STORAGE_DIR=images: the images land under ./images."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IMAGE_STORAGE_DIR", "images")
    assert make(tmp_path).local_storage_path == tmp_path.resolve() / "images"
    monkeypatch.setenv("STORAGE_PATH", str(tmp_path / "objects"))
    assert make(tmp_path).local_storage_path == tmp_path.resolve() / "objects"


def test_worldbase_names_win_over_the_seed_aliases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STORAGE_BACKEND", "local")
    monkeypatch.setenv("STORAGE_TYPE", "s3")
    monkeypatch.setenv("STORAGE_BUCKET", "ours")
    monkeypatch.setenv("AWS_BUCKET", "theirs")
    monkeypatch.setenv("WORLDBASE_ENV", "test")
    monkeypatch.setenv("NODE_ENV", "production")
    settings = make(tmp_path)
    assert (settings.storage_backend, settings.storage_bucket) == ("local", "ours")
    assert settings.worldbase_env == "test"
    # Keyword arguments (the tests' way) still use the field names.
    assert make(tmp_path, worldbase_worker_threads=3).worldbase_worker_threads == 3


def test_debug_leaves_an_explicit_log_level_alone(tmp_path: Path) -> None:
    assert make(tmp_path).log_level == "INFO"
    assert make(tmp_path, debug="1").log_level == "DEBUG"
    assert make(tmp_path, debug="t", log_level="WARNING").log_level == "WARNING"
    # Seed 003 reads anything but true/1/t as off; Node's `DEBUG=express:*` is no error.
    assert make(tmp_path, debug="express:*").debug is False
    assert make(tmp_path, debug="False").log_level == "INFO"


def test_storage_backend_gcs_is_s3_at_googles_endpoint(tmp_path: Path) -> None:
    settings = make(
        tmp_path,
        storage_backend="gcs",
        storage_bucket="game-tiles-bucket",
        aws_access_key_id="GOOG1EXAMPLE",
        aws_secret_access_key="hmac-secret",
        jwt_secret="x" * 40,
    )
    settings.check()
    storage = create_storage(settings)
    assert isinstance(storage, S3Storage)
    assert storage.bucket == "game-tiles-bucket"
    assert storage.client.meta.endpoint_url == GCS_ENDPOINT
    assert storage.client.meta.region_name == "auto"
    config: Any = storage.client.meta.config
    assert config.request_checksum_calculation == "when_required"
    assert config.response_checksum_validation == "when_required"
    # Plain s3 keeps botocore's defaults and AWS.
    s3 = create_storage(make(tmp_path, storage_backend="s3", storage_bucket="b"))
    assert isinstance(s3, S3Storage)
    assert s3.client.meta.region_name == "us-east-1"
    assert "amazonaws.com" in s3.client.meta.endpoint_url


async def test_gcs_backend_stores_through_the_s3_api(tmp_path: Path, s3_endpoint: str) -> None:
    """`gcs` with an endpoint override (a local S3 server standing in for Google's)."""
    import boto3

    bucket = "gcs-standin"
    boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    ).create_bucket(Bucket=bucket)
    settings = make(
        tmp_path,
        storage_backend="gcs",
        storage_bucket=bucket,
        aws_endpoint_url=s3_endpoint,
        aws_region="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    storage = create_storage(settings)
    await storage.put("tiles/1/2/3.png", b"png bytes", content_type="image/png")
    assert await storage.get("tiles/1/2/3.png") == b"png bytes"


def test_variables_that_look_like_settings_are_named() -> None:
    environ = {
        "DATABSE_URL": "postgresql://x",  # near miss
        "CORS_ORIGNS": "http://a",  # near miss
        "WORLDBASE_APP": "dnd",  # near miss of WORLDBASE_APPS
        "WORLDBASE_FROBNICATE": "1",  # our prefix, no such setting
        "STORAGE_FROBNICATE": "s3",  # a setting prefix
        "DATABASE_URL": "postgresql://x",  # known
        "IMAGE_STORAGE_DIR": "images",  # a seed alias
        "PORT": "3001",  # read by `worldbase serve`
        "WORLDBASE_TEST_BACKEND": "served",  # the tests' own
        "HOME": "/root",  # not ours
        "PATH": "/usr/bin",
        "AWS_DEFAULT_REGION": "eu-west-1",  # boto's own
    }
    lines = unknown_variable_warnings(environ)
    assert lines == [
        "CORS_ORIGNS is not a Worldbase setting (did you mean CORS_ORIGINS?)",
        "DATABSE_URL is not a Worldbase setting (did you mean DATABASE_URL?)",
        "STORAGE_FROBNICATE is not a Worldbase setting; it is ignored",
        "WORLDBASE_APP is not a Worldbase setting (did you mean WORLDBASE_APPS?)",
        "WORLDBASE_FROBNICATE is not a Worldbase setting; it is ignored",
    ]


def test_unknown_variables_are_logged_at_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / ".env").write_text("STORAGE_BACKNED=s3\n")
    monkeypatch.setenv("WORLDBASE_DATADIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with caplog.at_level("WARNING", logger="worldbase.settings"):
        warn_unknown_variables()
    messages = [record.getMessage() for record in caplog.records]
    assert "STORAGE_BACKNED is not a Worldbase setting (did you mean STORAGE_BACKEND?)" in messages
    assert any(m.startswith("WORLDBASE_DATADIR is not a Worldbase setting") for m in messages)


SERVE = "from worldbase.cli import app; app()"  # `worldbase serve` on this interpreter


def test_serve_takes_seed_004s_env_file_and_warns_about_the_rest(tmp_path: Path) -> None:
    """`worldbase serve` in a folder holding seed 004's `.env` (plus one typo)."""
    port = free_port()
    (tmp_path / ".env").write_text(
        f"PORT={port}\n"
        "NODE_ENV=development\n"
        "STORAGE_TYPE=local  # or 's3'\n"
        "STORAGE_PATH=./uploads\n"
        "QUEUE_NAME=photogrammetry\n"
        "QUEUE_CONCURRENCY=2\n"
        f"JWT_SECRET={'s' * 48}\n"
        "CORS_ORIGIN=https://bestiary.example\n"
        "DATABSE_URL=postgresql://user:password@localhost:5432/skyrim_bestiary\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORLDBASE_", "DATABASE_"))}
    env.update(
        WORLDBASE_DATA_DIR=str(tmp_path / "data"),
        WORLDBASE_APPS="dnd",
        WORLDBASE_PERIODIC_JOBS="false",
        LOG_JSON="false",
    )
    for name in ("REDIS_URL", "CORS_ORIGINS", "STORAGE_BACKEND", "STORAGE_BUCKET", "PORT"):
        env.pop(name, None)
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVE, "serve"],  # PORT from the .env
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            try:
                wait_for_port(port, timeout=90)
            except TimeoutError:
                raise AssertionError(log_path.read_text()[-3000:]) from None
            base = f"http://127.0.0.1:{port}"
            health = httpx.get(f"{base}/health").json()
            assert health["checks"]["images"] == {"total": 0}
            assert (health["database"], health["storage"]) == (True, True)
            for origin in ("https://bestiary.example", "http://localhost:5173"):
                preflight = httpx.options(
                    f"{base}/api/v1/images/search",
                    headers={"Origin": origin, "Access-Control-Request-Method": "GET"},
                )
                assert preflight.status_code == 200
                assert preflight.headers["access-control-allow-origin"] == origin
            created = httpx.post(
                f"{base}/api/v1/images/generate",
                json={
                    "subject_type": "item",
                    "subject_name": "Dagger",
                    "prompt": "A plain iron dagger",
                },
                timeout=60,
            )
            assert created.status_code == 201, created.text
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
    assert len(list((tmp_path / "uploads").rglob("*.webp"))) == 2  # STORAGE_PATH from .env
    text = log_path.read_text()
    assert "DATABSE_URL is not a Worldbase setting (did you mean DATABASE_URL?)" in text
    assert "QUEUE_NAME is not" not in text and "NODE_ENV is not" not in text
