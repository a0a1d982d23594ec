"""Settings: seed env names, secrets, lists, URL normalisation, fail-fast checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from worldbase.settings import ALL_APPS, ConfigurationError, Settings


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
    assert settings.max_requests_per_minute == 12
    assert settings.worldbase_apps == ["dnd", "osm"]
    assert not settings.is_sqlite


def test_defaults_are_embedded(tmp_path: Path) -> None:
    settings = make(tmp_path)
    assert settings.is_sqlite
    assert settings.sqlalchemy_url == f"sqlite+aiosqlite:///{tmp_path.resolve() / 'worldbase.db'}"
    assert settings.worldbase_apps == list(ALL_APPS)
    assert settings.inline_worker
    assert settings.local_storage_path == tmp_path.resolve() / "storage"


def test_unknown_app_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown apps"):
        make(tmp_path, worldbase_apps="dnd,nope")


def test_s3_needs_bucket(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="STORAGE_BUCKET"):
        make(tmp_path, storage_backend="s3", jwt_secret="x" * 40).check()


def test_dotenv_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("WEBP_QUALITY=70\nREDIS_URL=redis://127.0.0.1:6379/3\n")
    monkeypatch.chdir(tmp_path)
    settings = Settings(worldbase_data_dir=tmp_path)  # type: ignore[call-arg]
    assert settings.webp_quality == 70
    assert settings.redis_url == "redis://127.0.0.1:6379/3"
    assert not settings.inline_worker
