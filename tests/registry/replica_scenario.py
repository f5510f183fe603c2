"""Run by ``test_replica.py`` in a process of its own: Django configured from the environment as
a server would be, against a real primary (``DATABASE_URL``) and its streaming replica
(``DATABASE_REPLICA_URL``). It migrates the primary, writes through the services, makes lookups
through the WSGI application and prints what each database alias saw, as one JSON object."""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connections  # noqa: E402
from django.test.utils import CaptureQueriesContext, override_settings  # noqa: E402

from directory import checkpoints, keys  # noqa: E402
from registry import routers  # noqa: E402
from registry.services.common import Actor  # noqa: E402
from registry.services.vaults import vault_allocate  # noqa: E402
from registry.wsgi import application  # noqa: E402
from tests.factories import IssuerFactory, deliverable_provider, make_token  # noqa: E402

ACTOR = Actor.system("replica test")


def scalar(alias: str, sql: str):
    with connections[alias].cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def wait_for_replay(timeout: float = 20.0) -> None:
    """Until the replica has replayed everything the primary wrote so far."""
    target = scalar("default", "SELECT pg_current_wal_lsn()::text")
    deadline = time.monotonic() + timeout
    sql = f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"
    while not scalar("replica", sql):
        if time.monotonic() > deadline:
            raise SystemExit("the replica did not replay the primary's WAL in time")
        time.sleep(0.05)


def wait_for_receipt(timeout: float = 20.0) -> None:
    """Until the replica has received (not necessarily replayed) the primary's WAL."""
    target = scalar("default", "SELECT pg_current_wal_lsn()::text")
    deadline = time.monotonic() + timeout
    sql = f"SELECT pg_last_wal_receive_lsn() >= '{target}'::pg_lsn"
    while not scalar("replica", sql):
        if time.monotonic() > deadline:
            raise SystemExit("the replica did not receive the primary's WAL in time")
        time.sleep(0.05)


def lookup(number: str, token: str) -> dict:
    """One lookup through the WSGI application (its short path), with the SQL each alias ran."""
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": f"/api/v1/vaults/{number}",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_AUTHORIZATION": f"Bearer {token}",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
    }
    answer: dict = {}
    routers.clear_cache()
    checkpoints.clear_cache()
    with (
        CaptureQueriesContext(connections["default"]) as primary,
        CaptureQueriesContext(connections["replica"]) as replica,
    ):
        body = b"".join(application(environ, lambda status, headers: answer.update(status=status)))
    data = json.loads(body)
    return {
        "status": int(answer["status"].split()[0]),
        "checkpoint_size": int(data["proof"]["checkpoint"].split("\n")[1]),
        "primary_sql": [q["sql"] for q in primary.captured_queries],
        "replica_sql": [q["sql"] for q in replica.captured_queries],
    }


def main() -> None:
    call_command("migrate", verbosity=0)
    keys.generate()
    provider = deliverable_provider()
    _token, token = make_token(IssuerFactory())
    first = vault_allocate(actor=ACTOR, provider=provider)  # committed; the checkpoint follows
    checkpoints.publish()
    wait_for_replay()
    observed: dict = {
        "primary_in_recovery": scalar("default", "SELECT pg_is_in_recovery()"),
        "replica_in_recovery": scalar("replica", "SELECT pg_is_in_recovery()"),
        "fresh": lookup(first.number, token),
    }

    # Replay paused: the replica receives the next write but does not apply it.
    scalar("replica", "SELECT pg_wal_replay_pause()::text")
    second = vault_allocate(actor=ACTOR, provider=provider)
    primary_size = checkpoints.publish().size
    wait_for_receipt()
    observed["primary_checkpoint_size"] = primary_size
    # The paused replica may report itself caught up until the write's WAL is received and
    # flushed: ask again for a few seconds.
    for _ in range(100):
        observed["lag"] = routers.measure_lag()
        if observed["lag"]:
            break
        time.sleep(0.05)
    with override_settings(DATABASE_REPLICA_MAX_LAG=0):
        observed["lagging"] = lookup(second.number, token)
    # Within a lag the operator allows, the replica answers from its own (older) checkpoint:
    # the vault is absent there, proven against that checkpoint, never against the primary's.
    with override_settings(DATABASE_REPLICA_MAX_LAG=3600):
        observed["tolerated"] = lookup(second.number, token)
    scalar("replica", "SELECT pg_wal_replay_resume()::text")
    print(json.dumps(observed))


if __name__ == "__main__":
    main()
