"""A real federation on one machine: three registries, own databases, keys and allocator codes.

    python deploy/federation.py [--dir var/federation] [--base-port 8001] [--vaults 200]

Each registry (``registry-a`` … ``registry-c``, allocators VLT1 … VLT3) gets its own directory
under ``--dir`` (keys, secret key, last signed checkpoint, server log) and its own database: a
SQLite file there, or with ``DATABASE_URL_TEMPLATE=postgres://…/vr_{name}`` a PostgreSQL
database. A run starts from scratch (the previous run's databases and keys are replaced).

Setting up is quick because no step pays for a Python start of its own:

1. one process migrates a template database (and creates the cache table); it is copied for
   each registry (a file copy on SQLite, ``CREATE DATABASE … TEMPLATE`` on PostgreSQL);
2. one process per registry, the three in parallel, generates its keys, loads a small demo and
   prints its member entry (``call_command``), then waits;
3. this process signs the bootstrap with a new federation key and hands it to the three, which
   install it and exit;
4. the three are served by gunicorn (``deploy/gunicorn.conf.py``).

The script prints an issuer token of registry-a and curl commands resolving numbers of all
three through it; Ctrl-C stops them. The test suite (``tests/directory/federation/
test_real_processes.py``) and ``benchmarks/federation_bench.py`` start federations with the same
functions (``LocalFederation``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
FEDERATION_KEY_NAME = "federation.local"
RESERVED_PORTS = range(8000, 8004)  # make run and make federation
if str(ROOT) not in sys.path:  # run as a script: the project's modules
    sys.path.insert(0, str(ROOT))


@dataclass
class Node:
    """One registry of the local federation."""

    name: str
    allocator: str
    port: int
    directory: Path
    database_url: str
    federation_vkey: str = ""
    workers: int = 2
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = field(default=None, repr=False)
    token: str = ""  # an issuer token (scope lookup), from the demo
    numbers: list[str] = field(default_factory=list)  # deliverable numbers, from the demo
    member: dict = field(default_factory=dict)  # its entry in the federation document

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def key_dir(self) -> Path:
        return self.directory / "keys"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "registry.settings",
            "DATABASE_URL": self.database_url,
            "SECRET_KEY_FILE": str(self.directory / "secret_key"),
            "VAULT_KEY_DIR": str(self.key_dir),
            "VAULT_CHECKPOINT_STATE_FILE": str(self.directory / "last-checkpoint.json"),
            "VAULT_LOG_ORIGIN": f"{self.name}.local/log",
            "VAULT_ALLOCATOR": self.allocator,
            "VAULT_FEDERATION_KEYS": self.federation_vkey,
            "VAULT_CHECKPOINT_INTERVAL": "1",
            "VAULT_FEDERATION_TIMEOUT": "5",
            "VAULT_FEDERATION_PLAN_TIMEOUT": "20",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "REDIS_URL": "",  # each registry keeps its counters in its own database
            "PYTHONUNBUFFERED": "1",
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "GUNICORN_WORKERS": str(self.workers),
            "GUNICORN_THREADS": "8",
            "GUNICORN_TIMEOUT": "120",
            **self.extra_env,
        }

    def start(self) -> None:
        """Serve this registry with gunicorn, in a process group of its own (``stop``, ``kill``)."""
        log = (self.directory / "server.log").open("ab")
        self.process = subprocess.Popen(  # noqa: S603 (our own gunicorn)
            [PYTHON, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py")],
            env=self.env(),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            url = self.url + "/healthz"
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as answer:  # noqa: S310
                if answer.status == 200:
                    return
            if self.process and self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start: see {self.directory / 'server.log'}")

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the gunicorn master and its workers (their own process group)."""
        if self.process:  # the workers too, should the master be gone already
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, sig)

    def kill(self) -> None:
        """SIGKILL, as a crash: no worker finishes what it was answering."""
        if self.process:
            self.signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process:
            self.signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(10)
            self.signal(signal.SIGKILL)
            self.process.wait(10)


def free_port() -> int:
    """A port nobody listens on now (the kernel's choice, never 8000-8003)."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port not in RESERVED_PORTS:
            return port


# --- databases -----------------------------------------------------------------------------------


def _postgres(url: str) -> tuple[str, str]:
    """(server URL with the maintenance database, database name) of a PostgreSQL URL."""
    parts = urllib.parse.urlsplit(url)
    return parts._replace(path="/postgres").geturl(), parts.path.lstrip("/")


def _sqlite_path(url: str) -> Path:
    return Path(urllib.parse.urlsplit(url).path)


def is_postgres(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://"))


def drop_database(url: str) -> None:
    if is_postgres(url):
        import psycopg

        server, name = _postgres(url)
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(str(_sqlite_path(url)) + suffix).unlink(missing_ok=True)


def copy_database(template: str, targets: list[str]) -> None:
    """Each target a fresh copy of the (migrated) template; an existing target is replaced."""
    for target in targets:
        drop_database(target)
        if is_postgres(template):
            import psycopg

            server, name = _postgres(template)
            with psycopg.connect(server, autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{_postgres(target)[1]}" TEMPLATE "{name}"')
        else:
            shutil.copyfile(_sqlite_path(template), _sqlite_path(target))


def migrate_template(url: str, directory: Path) -> None:
    """Create and migrate the database every registry's is copied from (one Django start)."""
    drop_database(url)
    if is_postgres(url):
        import psycopg

        server, name = _postgres(url)
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    directory.mkdir(parents=True, exist_ok=True)
    template = Node("template", "VLT0", 0, directory, url)
    env = template.env() | {"SECRET_KEY": "template-only-" + secrets.token_urlsafe(40)}
    done = subprocess.run(  # noqa: S603 (this script, in its own mode)
        [PYTHON, __file__, "--internal-migrate"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"migrating the template database failed: {done.stderr[-3000:]}")


# --- the federation ------------------------------------------------------------------------------


def make_nodes(
    base: Path,
    ports: list[int],
    database_urls: list[str] | None = None,
    *,
    workers: int = 2,
    fresh: bool = True,
) -> list[Node]:
    """The registries' directories (emptied when ``fresh``) and settings; nothing runs yet."""
    nodes = []
    for index, port in enumerate(ports):
        name = f"registry-{'abcdefgh'[index]}"
        directory = base / name
        if fresh and directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True, exist_ok=True)
        secret = directory / "secret_key"
        if not secret.exists():
            secret.write_text(secrets.token_urlsafe(50))
            secret.chmod(0o600)
        url = database_urls[index] if database_urls else f"sqlite:///{directory / 'db.sqlite3'}"
        nodes.append(Node(name, f"VLT{index + 1}", port, directory, url, workers=workers))
    return nodes


def federation_key(path: Path, *, reuse: bool = False):
    """A new federation key, written as ``manage.py federation keygen`` writes it (or, when
    ``reuse``, the one already there); the key and its vkey."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from directory.transparency import note

    if reuse and path.exists():
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    else:
        private = Ed25519PrivateKey.generate()
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(
                private.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
    return private, note.verifier_key(FEDERATION_KEY_NAME, private.public_key().public_bytes_raw())


def prepare(
    nodes: list[Node], base: Path, *, vaults: int = 200, quorum: int = 0, migrate: bool = True
) -> dict:
    """Databases, keys, demos and the signed bootstrap, installed on every registry.

    ``migrate``: copy each database from a template migrated once, and sign with a new
    federation key; else the databases exist, are migrated already and accepted a document of
    the federation key kept in ``base`` (the benchmark's, filled once): a new document with a
    higher serial, signed by that key, replaces it. Returns {"document", "vkey", "key",
    "private_key", "note"}; each node gets its ``token``, ``numbers`` and ``member``.
    """
    from directory.transparency import federation as fed

    base.mkdir(parents=True, exist_ok=True)
    private, vkey = federation_key(base / "federation.key", reuse=not migrate)
    if migrate:
        first = nodes[0].database_url
        template = (
            first.rsplit("/", 1)[0] + "/" + _postgres(first)[1] + "_template"
            if is_postgres(first)
            else f"sqlite:///{base / 'template.sqlite3'}"
        )
        migrate_template(template, base / "template")
        try:
            copy_database(template, [node.database_url for node in nodes])
        finally:
            drop_database(template)
    workers = []
    for node in nodes:
        node.federation_vkey = vkey
        config = {"url": node.url, "name": node.name, "vaults": vaults}
        workers.append(
            subprocess.Popen(  # noqa: S603 (this script, in its own mode)
                [PYTHON, __file__, "--internal-node", json.dumps(config)],
                env=node.env(),
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=(node.directory / "setup.log").open("wb"),
                text=True,
            )
        )
    try:
        for node, worker in zip(nodes, workers, strict=True):
            line = worker.stdout.readline()
            if not line:
                worker.wait(30)
                log = (node.directory / "setup.log").read_text()[-3000:]
                raise RuntimeError(f"{node.name}: setting up failed:\n{log}")
            ready = json.loads(line)
            node.member, node.token, node.numbers = (
                ready["member"],
                ready["token"],
                ready["numbers"],
            )
        document = {
            "federation": FEDERATION_KEY_NAME,
            "serial": int(time.time()),
            "country": "FR",
            "quorum": quorum,
            "members": [node.member for node in nodes],
        }
        (base / "federation.json").write_text(json.dumps(document, indent=2))
        signed = fed.sign(document, FEDERATION_KEY_NAME, private)
        (base / "federation.note").write_text(signed)
        for worker in workers:
            worker.stdin.write(str(base / "federation.note") + "\n")
            worker.stdin.flush()
        for node, worker in zip(nodes, workers, strict=True):
            answer = worker.stdout.read()
            if worker.wait(60) != 0 or "installed" not in answer:
                log = (node.directory / "setup.log").read_text()[-3000:]
                raise RuntimeError(f"{node.name}: installing the bootstrap failed:\n{log}")
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    return {
        "document": document,
        "vkey": vkey,
        "key": base / "federation.key",
        "private_key": private,
        "note": signed,
    }


class LocalFederation:
    """Three registries set up (``prepare``) and served; stopped, and their databases dropped
    when ``drop`` (the test suite's), on leaving the ``with`` block, also after a failure."""

    def __init__(
        self,
        base: Path,
        *,
        database_urls: list[str] | None = None,
        ports: list[int] | None = None,
        vaults: int = 200,
        workers: int = 2,
        quorum: int = 0,
        drop: bool = False,
        migrate: bool = True,
        fresh: bool = True,
        extra_env: dict[str, str] | None = None,
    ):
        self.base = base
        self.nodes = make_nodes(
            base,
            ports or [free_port() for _ in range(3)],
            database_urls,
            workers=workers,
            fresh=fresh,
        )
        for node in self.nodes:
            node.extra_env = dict(extra_env or {})
        self.vaults, self.quorum, self.drop, self.migrate = vaults, quorum, drop, migrate
        self.setup: dict = {}

    def __enter__(self) -> LocalFederation:
        try:
            self.setup = prepare(
                self.nodes, self.base, vaults=self.vaults, quorum=self.quorum, migrate=self.migrate
            )
            for node in self.nodes:
                node.start()
            for node in self.nodes:
                node.wait_ready()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for node in self.nodes:  # all asked at once, then waited for
            node.signal(signal.SIGTERM)
        for node in self.nodes:
            node.stop()
        if self.drop:
            for node in self.nodes:
                with contextlib.suppress(Exception):
                    drop_database(node.database_url)

    @property
    def vkey(self) -> str:
        return self.setup["vkey"]

    def __getitem__(self, name: str) -> Node:
        return next(node for node in self.nodes if node.name == name)


# --- the two internal modes: run with a registry's environment ----------------------------------


def _django():
    import django

    django.setup()


def _internal_migrate() -> None:
    _django()
    from django.core.management import call_command

    call_command("migrate", "--noinput", verbosity=0)
    call_command("createcachetable", verbosity=0)


def _internal_node(config: dict) -> None:
    """Keys, the demo and the member entry (one JSON line out); then install the bootstrap
    whose path comes in on stdin."""
    import io

    _django()
    from django.core.management import call_command

    from registry.models import Vault, VaultStatus

    call_command("generate_keys", stdout=io.StringIO())
    token = ""
    if config["vaults"]:
        out = io.StringIO()
        call_command("load_demo", vaults=config["vaults"], base_url=config["url"], stdout=out)
        token = re.search(r"Issuer token \(scope lookup\):\s+(\S+)", out.getvalue()).group(1)
    out = io.StringIO()
    call_command(
        "federation", "member", "--url", config["url"], "--name", config["name"], stdout=out
    )
    from directory import proven

    candidates = Vault.objects.filter(
        status=VaultStatus.ACTIVE, client_hold=False, server_hold=False
    ).order_by("number")
    sample = [
        number
        for number in candidates.values_list("number", flat=True)[:60]
        if (proven.lookup(number).fields or {}).get("deliverable")
    ][:20]
    print(json.dumps({"member": json.loads(out.getvalue()), "token": token, "numbers": sample}))
    sys.stdout.flush()
    note_path = sys.stdin.readline().strip()
    call_command("federation", "install", note_path, stdout=io.StringIO())
    from django.db import connections

    connections.close_all()
    print("installed", flush=True)


# --- make federation ----------------------------------------------------------------------------


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--internal-migrate":
        _internal_migrate()
        return 0
    if len(sys.argv) > 2 and sys.argv[1] == "--internal-node":
        _internal_node(json.loads(sys.argv[2]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, default=ROOT / "var" / "federation")
    parser.add_argument("--base-port", type=int, default=8001)
    parser.add_argument("--vaults", type=int, default=200)
    args = parser.parse_args()
    template = os.environ.get("DATABASE_URL_TEMPLATE")
    names = [f"registry_{letter}" for letter in "abc"]
    urls = [template.format(name=name) for name in names] if template else None
    started = time.monotonic()
    # SIGTERM (a service manager, kill) stops the three as Ctrl-C does: they run in sessions
    # of their own and would outlive this script.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    federation = LocalFederation(
        args.dir.resolve(),
        database_urls=urls,
        ports=[args.base_port + i for i in range(3)],
        vaults=args.vaults,
    )
    with federation:
        a = federation.nodes[0]
        print(f"Three registries ready in {time.monotonic() - started:.0f} s.")
        print(f"\nFederation key (pin it): {federation.vkey}")
        for node in federation.nodes:
            log = node.directory / "server.log"
            print(f"{node.name:<11} {node.url}  allocator {node.allocator}  log {log}")
        print(
            f"\nIssuer token of {a.name}: {a.token}\n\n"
            f"Resolve numbers of all three through {a.name}:"
        )
        for node in federation.nodes:
            print(
                f"  curl -s -H 'Authorization: Bearer {a.token}' "
                f"{a.url}/api/v1/vaults/{node.numbers[0]}"
            )
        print(f"  curl -s {a.url}/.well-known/vault-federation")
        print(
            f"\nVerified by the client:\n  vault-registry --url {a.url} --token {a.token} "
            f"--federation-key '{federation.vkey}' lookup NUMBER\n\nCtrl-C stops the three."
        )
        with contextlib.suppress(KeyboardInterrupt):
            while all(node.process.poll() is None for node in federation.nodes):
                time.sleep(1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
