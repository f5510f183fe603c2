"""The read-replica router's choices, without a replica (the real one: test_replica.py)."""

from __future__ import annotations

import pytest
from django.db import DEFAULT_DB_ALIAS

from registry import routers


@pytest.fixture
def replica(settings, monkeypatch):
    """A replica alias as DATABASE_REPLICA_URL adds it, whose lag the test sets."""
    monkeypatch.setattr(routers, "replica_configured", lambda: True)
    settings.DATABASE_REPLICA_MAX_LAG = 5
    settings.DATABASE_REPLICA_LAG_CHECK = 2
    asked = []
    lag = {"value": 0.0}

    def measure():
        asked.append(lag["value"])
        return lag["value"]

    monkeypatch.setattr(routers, "measure_lag", measure)
    routers.clear_cache()
    yield lag, asked
    routers.clear_cache()


def test_without_a_replica_the_read_side_reads_the_primary():
    with routers.read_side() as alias:
        assert alias == DEFAULT_DB_ALIAS
        assert routers.ReplicaRouter().db_for_read(None) == DEFAULT_DB_ALIAS
    assert routers.ReplicaRouter().db_for_read(None) is None  # outside: Django's default


def test_a_fresh_replica_serves_the_read_side_and_never_a_write(replica):
    with routers.read_side() as alias:
        assert alias == routers.REPLICA
        assert routers.reading() == routers.REPLICA
        assert routers.ReplicaRouter().db_for_read(None) == routers.REPLICA
        assert routers.ReplicaRouter().db_for_write(None) == DEFAULT_DB_ALIAS
    assert routers.reading() == DEFAULT_DB_ALIAS


def test_a_replica_beyond_the_allowed_lag_or_unreachable_is_skipped(replica):
    lag, _asked = replica
    lag["value"] = 5.5
    with routers.read_side() as alias:
        assert alias == DEFAULT_DB_ALIAS
    routers.clear_cache()
    lag["value"] = None
    with routers.read_side() as alias:
        assert alias == DEFAULT_DB_ALIAS


def test_the_lag_is_asked_once_per_check_interval(replica):
    _lag, asked = replica
    for _ in range(3):
        with routers.read_side():
            pass
    assert len(asked) == 1


def test_one_answer_keeps_the_alias_chosen_first(replica):
    lag, _asked = replica
    with routers.read_side() as outer:
        routers.clear_cache()
        lag["value"] = 60.0
        with routers.read_side() as inner:
            assert inner == outer == routers.REPLICA


def test_migrations_run_on_the_primary_only():
    router = routers.ReplicaRouter()
    assert router.allow_migrate(DEFAULT_DB_ALIAS, "registry")
    assert not router.allow_migrate(routers.REPLICA, "registry")
