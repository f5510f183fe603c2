"""Reads of the directory from a streaming replica, everything else from the primary.

The read side (lookups, routing plans, state proofs, log reads: the ``directory`` views) marks
what it reads with ``read_side()``; inside it, reads go to the ``replica`` alias while the
replica lags the primary by at most ``DATABASE_REPLICA_MAX_LAG`` seconds, and to the primary
otherwise. Everything else reads from the primary, and every write goes there whatever the flag
says: services, checkpoint publication, a token's last use, a routing plan's record.

It is a flag set by views, not a choice per model: the same tables (checkpoints, state map,
tree, log) are read by writes (which must see the primary's latest rows, in their own
transaction) and by answers (which may be a few seconds behind). An answer stays consistent
on a replica because the serving checkpoint is read from the same alias as the records it
proves: a replica that has replayed checkpoint N has replayed every record at or below N, which
were committed before it (``directory.checkpoints.serving`` caches one checkpoint per alias).

The lag is ``now() - pg_last_xact_replay_timestamp()`` on the replica, or 0 when it has
replayed all the WAL it received (an idle primary sends no transactions, so the last replayed
one gets old without the replica being behind). It is asked at most every
``DATABASE_REPLICA_LAG_CHECK`` seconds per process; a replica that cannot be asked counts as
lagging for ``UNREACHABLE_RETRY`` seconds, so a dead replica costs one connection timeout, not
one per request.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

logger = logging.getLogger("registry.routers")

REPLICA = "replica"
UNREACHABLE_RETRY = 30.0

_reading: contextvars.ContextVar[str | None] = contextvars.ContextVar("reading", default=None)
# (monotonic time of the check, lag in seconds or None when the replica could not be asked)
_lag: dict[str, tuple[float, float | None]] = {}

LAG_SQL = (
    "SELECT CASE WHEN NOT pg_is_in_recovery() THEN 0"
    " WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0"
    " ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 'Infinity')"
    " END::float8"
)


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


def measure_lag() -> float | None:
    """The replica's lag in seconds (one query), or None when it cannot be asked."""
    connection = connections[REPLICA]
    if connection.vendor != "postgresql":
        return 0.0
    try:
        with connection.cursor() as cursor:
            cursor.execute(LAG_SQL)
            return float(cursor.fetchone()[0])
    except Exception as exc:  # any driver error: the replica is not usable now
        logger.warning("The replica cannot be asked its lag, reading from the primary: %s", exc)
        connection.close()
        return None


def replica_lag() -> float | None:
    """The replica's lag, asked at most every DATABASE_REPLICA_LAG_CHECK seconds."""
    now = time.monotonic()
    cached = _lag.get(REPLICA)
    if cached is not None:
        checked, lag = cached
        ttl = settings.DATABASE_REPLICA_LAG_CHECK if lag is not None else UNREACHABLE_RETRY
        if now - checked < ttl:
            return lag
    lag = measure_lag()
    _lag[REPLICA] = (now, lag)
    return lag


def read_alias() -> str:
    """Where the read side reads now: the replica when it is fresh enough, else the primary."""
    if not replica_configured():
        return DEFAULT_DB_ALIAS
    lag = replica_lag()
    if lag is None or lag > settings.DATABASE_REPLICA_MAX_LAG:
        return DEFAULT_DB_ALIAS
    return REPLICA


def reading() -> str:
    """The alias of the current read: the one ``read_side()`` chose, or the primary outside it
    (raw SQL of the directory reads through ``connections[reading()]``)."""
    return _reading.get() or DEFAULT_DB_ALIAS


@contextmanager
def read_side() -> Iterator[str]:
    """Reads inside go to the replica while it is fresh enough; writes still go to the primary.
    The alias is chosen once, so one answer never mixes the two."""
    token = _reading.set(_reading.get() or read_alias())
    try:
        yield _reading.get()
    finally:
        _reading.reset(token)


def reads_from_replica(method):
    """Decorate a read view's handler: its reads come from ``read_side()``."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with read_side():
            return method(*args, **kwargs)

    return wrapper


def clear_cache() -> None:
    _lag.clear()


class ReplicaRouter:
    """DATABASE_ROUTERS entry when DATABASE_REPLICA_URL is set."""

    def db_for_read(self, model, **hints) -> str | None:
        return _reading.get()

    def db_for_write(self, model, **hints) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        return True  # the same rows on both

    def allow_migrate(self, db, app_label, model_name=None, **hints) -> bool:
        return db == DEFAULT_DB_ALIAS  # the replica replays the primary's schema
