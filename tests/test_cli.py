"""The `worldbase` command: migrate, users create, seed, settings errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from worldbase.cli import app

runner = CliRunner()


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in ("DATABASE_URL", "REDIS_URL", "STORAGE_BACKEND", "WORLDBASE_ENV"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORLDBASE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("JWT_SECRET", "cli-test-secret-" + "z" * 32)
    return tmp_path / "data"


def test_migrate_then_users_create_and_update(cli_env: Path) -> None:
    result = runner.invoke(app, ["migrate"])
    assert result.exit_code == 0, result.output
    assert (cli_env / "worldbase.db").exists()

    result = runner.invoke(
        app, ["users", "create", "Root@Example.com", "--password", "s3cret-pass", "--admin"]
    )
    assert result.exit_code == 0, result.output
    assert "created admin root@example.com" in result.output

    result = runner.invoke(
        app, ["users", "create", "root@example.com", "--password", "another-pass"]
    )
    assert result.exit_code == 0, result.output
    assert "updated" in result.output


def test_users_create_rejects_bad_input(cli_env: Path) -> None:
    runner.invoke(app, ["migrate"])
    result = runner.invoke(app, ["users", "create", "not-an-email", "--password", "s3cret-pass"])
    assert result.exit_code == 2
    assert "invalid e-mail" in result.output
    result = runner.invoke(app, ["users", "create", "a@example.com", "--password", "short"])
    assert result.exit_code == 2
    assert "8 to 128" in result.output


def test_seed_is_idempotent(cli_env: Path) -> None:
    runner.invoke(app, ["migrate"])
    first = runner.invoke(app, ["seed"])
    assert first.exit_code == 0, first.output
    assert "created demo user" in first.output
    second = runner.invoke(app, ["seed"])
    assert second.exit_code == 0, second.output
    assert "kept demo user" in second.output


def test_production_without_secret_exits_with_reason(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JWT_SECRET")
    monkeypatch.setenv("WORLDBASE_ENV", "production")
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/none")
    result = runner.invoke(app, ["migrate"])
    assert result.exit_code == 2
    assert "JWT_SECRET is not set" in result.output


def test_backup_then_restore_into_empty_data_dir(
    cli_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner.invoke(app, ["migrate"])
    runner.invoke(app, ["users", "create", "keep@example.com", "--password", "s3cret-pass"])
    result = runner.invoke(app, ["backup"])
    assert result.exit_code == 0, result.output
    archive = next((cli_env / "backups").glob("worldbase-*.tar.gz"))

    monkeypatch.setenv("WORLDBASE_DATA_DIR", str(tmp_path / "fresh"))
    result = runner.invoke(app, ["restore", str(archive)])
    assert result.exit_code == 0, result.output
    assert "restored" in result.output
    # The restored database has the user: creating it again only updates it.
    result = runner.invoke(app, ["users", "create", "keep@example.com", "--password", "new-pass-1"])
    assert "updated user keep@example.com" in result.output
    # A restore onto data is refused with a one-line reason.
    result = runner.invoke(app, ["restore", str(archive)])
    assert result.exit_code == 1
    assert "error:" in result.output


def test_serve_refuses_several_workers_with_in_process_jobs(cli_env: Path) -> None:
    result = runner.invoke(app, ["serve", "--workers", "2"])
    assert result.exit_code == 2
    assert "REDIS_URL" in result.output
