"""`worldbase import osm FILE`."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.apps.osm.test_files import OSM_XML
from worldbase.cli import app


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WORLDBASE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("JWT_SECRET", "cli-secret-" + "x" * 40)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_import_osm_file_reports_counts(env: Path) -> None:
    path = env / "area.osm"
    path.write_text(OSM_XML)
    result = CliRunner().invoke(app, ["import", "osm", str(path)])
    assert result.exit_code == 0, result.output
    assert "created 12" in result.output
    again = CliRunner().invoke(app, ["import", "osm", str(path)])
    assert "unchanged 12" in again.output
    # SQLite has no create mode of its own: `--create` is the usual path.
    created = CliRunner().invoke(app, ["import", "osm", str(path), "--create"])
    assert created.exit_code == 0 and "unchanged 12" in created.output


def test_bad_files_exit_non_zero(env: Path) -> None:
    (env / "x.txt").write_text("hi")
    assert CliRunner().invoke(app, ["import", "osm", str(env / "x.txt")]).exit_code == 2
    (env / "bad.osm").write_text("<osm><node")
    result = CliRunner().invoke(app, ["import", "osm", str(env / "bad.osm")])
    assert result.exit_code == 1 and "Malformed" in result.output
    (env / "a.osc").write_text("<osmChange version='0.6'></osmChange>")
    result = CliRunner().invoke(app, ["import", "osm", str(env / "a.osc"), "--create"])
    assert result.exit_code == 1 and "full files" in result.output
