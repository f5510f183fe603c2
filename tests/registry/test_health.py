"""/healthz and /readyz: what a load balancer asks before sending traffic (issue 12)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client

from registry import health
from tests.registry.helpers import assert_problem


def test_healthz_answers_without_a_database():
    # no db fixture: any database access would fail the test
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "alive"}
    assert "no-cache" in response["Cache-Control"]


def test_readyz_is_200_when_database_keys_and_migrations_are_there(db):
    response = Client().get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "keys": "ok", "migrations": "ok"},
    }


def test_health_endpoints_answer_get_and_head_only(db):
    assert Client().head("/readyz").status_code == 200
    assert Client().post("/healthz").status_code == 405


def unreachable() -> dict:
    """The test database's settings, pointing where nothing answers."""
    params = dict(connection.settings_dict)
    if connection.vendor == "sqlite":
        params["NAME"] = "/nonexistent-directory/registry.sqlite3"
    else:
        params.update(HOST="127.0.0.1", PORT="1")  # refused at once
    return params


def test_readyz_is_503_when_the_database_cannot_be_reached(db, monkeypatch):
    monkeypatch.setattr(health, "database_settings", unreachable)
    response = Client().get("/readyz")
    body = assert_problem(response, 503, "not_ready")
    assert body["checks"]["database"].startswith("unreachable (")
    assert body["checks"]["keys"] == "ok"
    assert body["checks"]["migrations"] == "unknown (no database)"
    assert body["detail"] == "Not ready: database, migrations."
    assert response["Retry-After"] == "5"


def test_readyz_is_503_without_signing_keys(db, settings, tmp_path):
    from directory import keys

    settings.VAULT_KEY_DIR = tmp_path / "missing"
    keys.reset()
    response = Client().get("/readyz")
    body = assert_problem(response, 503, "not_ready")
    assert body["checks"]["keys"].startswith("not loaded (ImproperlyConfigured: No log signing key")
    assert (body["checks"]["database"], body["checks"]["migrations"]) == ("ok", "ok")
    assert "PRIVATE KEY" not in response.content.decode()


def test_readyz_is_503_while_a_migration_is_not_applied(db, monkeypatch):
    executor = MigrationExecutor(connection)
    last = executor.loader.get_migration("registry", "0003_transfers")
    monkeypatch.setattr(health, "_migrations_applied", False)
    monkeypatch.setattr(
        MigrationExecutor,
        "migration_plan",
        lambda self, targets, clean_start=False: [(last, False)],
    )
    response = Client().get("/readyz")
    body = assert_problem(response, 503, "not_ready")
    assert body["checks"]["migrations"] == "1 not applied (registry.0003_transfers)"
    assert body["detail"] == "Not ready: migrations."


def test_once_migrated_the_migration_graph_is_not_read_again(db, monkeypatch):
    assert Client().get("/readyz").status_code == 200

    def fail(self, targets, clean_start=False):
        raise AssertionError("read again")

    monkeypatch.setattr(MigrationExecutor, "migration_plan", fail)
    assert Client().get("/readyz").status_code == 200


@pytest.mark.parametrize(("value", "expected"), [("", "5"), ("2", "2")])
def test_postgresql_connections_time_out(value, expected):
    env = {
        **os.environ,
        "DATABASE_URL": "postgres://u@db.example:5432/registry",
        "DATABASE_CONNECT_TIMEOUT": value,
        "SECRET_KEY": "x" * 40,
    }
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from registry import settings; "
            "print(settings.DATABASES['default']['OPTIONS']['connect_timeout'])",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == expected
