"""A real PostgreSQL primary and streaming replica: the read side is served from the replica,
writes go to the primary, and a lagging replica is skipped (registry.routers).

The machine's own cluster accepts no replication connections, so the test makes its own: as the
``postgres`` user, ``initdb`` a primary in a temporary directory on a free port (``wal_level =
replica``, replication trusted from 127.0.0.1), ``pg_basebackup -R`` a replica from it on
another port, and removes both afterwards, whatever happened. The scenario itself runs in a
process of its own (``replica_scenario.py``), configured through DATABASE_URL and
DATABASE_REPLICA_URL as a server is.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

BIN = Path("/usr/lib/postgresql/15/bin")
TOOLS = ("initdb", "pg_basebackup", "pg_ctl")
ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.postgresql,
    pytest.mark.skipif(
        not all((BIN / tool).exists() for tool in TOOLS) or shutil.which("runuser") is None,
        reason=f"needs {', '.join(TOOLS)} in {BIN} and runuser, to run a primary and a replica",
    ),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def as_postgres(*command: str, timeout: float = 60) -> None:
    subprocess.run(
        ["runuser", "-u", "postgres", "--", *command],
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def clusters():
    """A primary and its streaming replica, each on its own free port: (primary, replica) URLs."""
    base = Path(tempfile.mkdtemp(prefix="vr-replica-"))
    shutil.chown(base, "postgres")
    primary, replica = base / "primary", base / "replica"
    ports = free_port(), free_port()
    started = []
    try:
        as_postgres(str(BIN / "initdb"), "-D", str(primary), "-U", "postgres", "--auth=trust")
        with open(primary / "postgresql.conf", "a") as conf:
            conf.write(
                f"port = {ports[0]}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{base}'\nwal_level = replica\n"
                "max_wal_senders = 4\nhot_standby = on\nfsync = off\n"
                "synchronous_commit = off\nfull_page_writes = off\n"
            )
        with open(primary / "pg_hba.conf", "a") as hba:
            hba.write("host replication postgres 127.0.0.1/32 trust\n")
        for name, data, port in (("primary", primary, ports[0]), ("replica", replica, ports[1])):
            if name == "replica":
                as_postgres(
                    str(BIN / "pg_basebackup"),
                    *("-h", "127.0.0.1", "-p", str(ports[0]), "-U", "postgres"),
                    *("-D", str(replica), "-R", "-X", "stream", "-c", "fast"),
                )
                with open(replica / "postgresql.auto.conf", "a") as conf:
                    conf.write(f"port = {port}\n")
            as_postgres(
                str(BIN / "pg_ctl"), "-D", str(data), "-l", str(base / f"{name}.log"), "-w", "start"
            )
            started.append(data)
        yield tuple(f"postgres://postgres@127.0.0.1:{port}/postgres" for port in ports)
    finally:
        for data in reversed(started):
            stop = [str(BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
            subprocess.run(
                ["runuser", "-u", "postgres", "--", *stop],
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(base, ignore_errors=True)


def test_lookups_read_the_replica_writes_the_primary_and_a_lagging_replica_is_skipped(
    clusters, tmp_path
):
    # given a primary and its streaming replica, and the registry configured with both
    primary_url, replica_url = clusters
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": primary_url,
        "DATABASE_REPLICA_URL": replica_url,
        "DATABASE_REPLICA_LAG_CHECK": "0",
        "VAULT_KEY_DIR": str(tmp_path / "keys"),
        "VAULT_CHECKPOINT_INTERVAL": "0",
        "LOG_LEVEL": "WARNING",
    }

    # when the scenario migrates, writes through the services and looks vaults up
    run = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "registry" / "replica_scenario.py")],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])

    # then the two are what they claim
    assert seen["primary_in_recovery"] is False
    assert seen["replica_in_recovery"] is True

    # a lookup on a fresh replica reads the checkpoint and the records there; the primary
    # sees only the token check and its last-use update
    fresh = seen["fresh"]
    assert fresh["status"] == 200
    assert any("directory_checkpoint" in sql for sql in fresh["replica_sql"])
    assert any("directory_staterecord" in sql for sql in fresh["replica_sql"])
    assert fresh["primary_sql"], "the token is checked on the primary"
    assert all("registry_apitoken" in sql for sql in fresh["primary_sql"])
    assert any(sql.startswith("UPDATE") for sql in fresh["primary_sql"])

    # with replay paused behind a newer write, the replica lags: the lookup goes to the
    # primary, which knows the new vault at its newest checkpoint
    assert seen["lag"] > 0
    lagging = seen["lagging"]
    assert lagging["status"] == 200
    assert lagging["checkpoint_size"] == seen["primary_checkpoint_size"]
    assert any("directory_staterecord" in sql for sql in lagging["primary_sql"])
    assert not any("directory_" in sql for sql in lagging["replica_sql"])

    # and within a lag the operator allows, the replica answers consistently with itself: the
    # new vault is absent at the replica's older checkpoint, proven against that one
    tolerated = seen["tolerated"]
    assert tolerated["status"] == 404
    assert tolerated["checkpoint_size"] < seen["primary_checkpoint_size"]
    assert any("directory_staterecord" in sql for sql in tolerated["replica_sql"])
