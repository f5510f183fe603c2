"""A real federation on one machine: three registries, own databases, keys and allocator codes.

    python deploy/federation.py [--dir var/federation] [--base-port 8001] [--vaults 200]

Each registry (``registry-a`` … ``registry-c``, allocators VLT1 … VLT3) gets its own directory
under ``--dir`` (SQLite database, keys, secret key; ``DATABASE_URL_TEMPLATE`` with ``{name}``
picks PostgreSQL instead), is migrated, given keys and a small demo; a federation key signs a
bootstrap listing the three, each installs it; the three are served by gunicorn, and the
script prints an issuer token of registry-a and curl commands resolving numbers of all three
through it. Ctrl-C stops them. ``tests/federation`` starts processes with the same functions.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
FEDERATION_KEY_NAME = "federation.local"


@dataclass
class Node:
    """One registry of the local federation."""

    name: str
    allocator: str
    port: int
    directory: Path
    database_url: str
    federation_vkey: str = ""
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "registry.settings",
            "DATABASE_URL": self.database_url,
            "SECRET_KEY_FILE": str(self.directory / "secret_key"),
            "VAULT_KEY_DIR": str(self.directory / "keys"),
            "VAULT_LOG_ORIGIN": f"{self.name}.local/log",
            "VAULT_ALLOCATOR": self.allocator,
            "VAULT_FEDERATION_KEYS": self.federation_vkey,
            "VAULT_CHECKPOINT_INTERVAL": "1",
            "VAULT_FEDERATION_TIMEOUT": "5",
            "VAULT_FEDERATION_PLAN_TIMEOUT": "20",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "PYTHONUNBUFFERED": "1",
        }

    def manage(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(  # noqa: S603 (our own manage.py)
            [PYTHON, str(ROOT / "manage.py"), *args],
            env=self.env(),
            cwd=ROOT,
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{self.name}: manage.py {' '.join(args)}: {done.stderr[-2000:]}")
        return done.stdout

    def start(self) -> None:
        log = (self.directory / "server.log").open("ab")
        self.process = subprocess.Popen(  # noqa: S603
            [
                PYTHON,
                "-m",
                "gunicorn",
                "registry.wsgi",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "2",
                "--threads",
                "8",
                "--timeout",
                "120",
            ],
            env=self.env(),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            url = self.url + "/healthz"
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as answer:  # noqa: S310
                if answer.status == 200:
                    return
            if self.process and self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not start: see {self.directory / 'server.log'}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(10)
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_nodes(base: Path, ports: list[int], template: str | None = None) -> list[Node]:
    nodes = []
    for index, port in enumerate(ports):
        name = f"registry-{'abcdefgh'[index]}"
        directory = base / name
        directory.mkdir(parents=True, exist_ok=True)
        secret = directory / "secret_key"
        if not secret.exists():
            secret.write_text(secrets.token_urlsafe(50))
            secret.chmod(0o600)
        url = (template or f"sqlite:///{directory / 'db.sqlite3'}").format(
            name=name.replace("-", "_")
        )
        nodes.append(Node(name, f"VLT{index + 1}", port, directory, url))
    return nodes


def prepare(nodes: list[Node], base: Path, *, vaults: int = 200, quorum: int = 0) -> dict:
    """Migrate, key and fill each registry; sign the bootstrap with a new federation key and
    install it everywhere. Returns {"document", "vkey", "tokens": {name: issuer token}}."""
    key = base / "federation.key"
    if not key.exists():
        nodes[0].manage("federation", "keygen", "--key", str(key), "--name", FEDERATION_KEY_NAME)
    vkey = _vkey(nodes[0], key)
    tokens = {}
    members = []
    for node in nodes:
        node.federation_vkey = vkey
        node.manage("migrate", "--noinput")
        node.manage("generate_keys")
        out = node.manage("load_demo", "--vaults", str(vaults), "--base-url", node.url)
        tokens[node.name] = re.search(r"Issuer token \(scope lookup\):\s+(\S+)", out).group(1)
        members.append(
            json.loads(node.manage("federation", "member", "--url", node.url, "--name", node.name))
        )
    serial = int(time.time())
    document = {
        "federation": FEDERATION_KEY_NAME,
        "serial": serial,
        "country": "FR",
        "quorum": quorum,
        "members": members,
    }
    (base / "federation.json").write_text(json.dumps(document, indent=2))
    signed = base / "federation.note"
    nodes[0].manage(
        "federation",
        "sign",
        "--document",
        str(base / "federation.json"),
        "--key",
        str(key),
        "--out",
        str(signed),
    )
    for node in nodes:
        node.manage("federation", "install", str(signed))
    return {"document": document, "vkey": vkey, "tokens": tokens, "key": key}


def _vkey(node: Node, key: Path) -> str:
    script = (
        "import sys;from cryptography.hazmat.primitives import serialization as s;"
        "from directory.transparency import note;"
        f"k=s.load_pem_private_key(open({str(key)!r},'rb').read(),None);"
        f"print(note.verifier_key({FEDERATION_KEY_NAME!r},k.public_key().public_bytes_raw()))"
    )
    return subprocess.run(  # noqa: S603
        [PYTHON, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def sample_numbers(node: Node, count: int = 3) -> list[str]:
    out = node.manage(
        "shell",
        "-c",
        "from registry.models import Vault\n"
        "for n in Vault.objects.filter(status='active').order_by('number')"
        f".values_list('number', flat=True)[:{count}]: print('NUMBER', n)",
    )
    return [line.split()[1] for line in out.splitlines() if line.startswith("NUMBER ")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, default=ROOT / "var" / "federation")
    parser.add_argument("--base-port", type=int, default=8001)
    parser.add_argument("--vaults", type=int, default=200)
    args = parser.parse_args()
    nodes = make_nodes(
        args.dir, [args.base_port + i for i in range(3)], os.environ.get("DATABASE_URL_TEMPLATE")
    )
    setup = prepare(nodes, args.dir, vaults=args.vaults)
    try:
        for node in nodes:
            node.start()
        for node in nodes:
            node.wait_ready()
        a = nodes[0]
        token = setup["tokens"][a.name]
        print(f"\nFederation key (pin it): {setup['vkey']}")
        for node in nodes:
            log = node.directory / "server.log"
            print(f"{node.name:<11} {node.url}  allocator {node.allocator}  log {log}")
        print(
            f"\nIssuer token of {a.name}: {token}\n\nResolve numbers of all three through {a.name}:"
        )
        for node in nodes:
            for number in sample_numbers(node, 1):
                print(
                    f"  curl -s -H 'Authorization: Bearer {token}' {a.url}/api/v1/vaults/{number}"
                )
        print(f"  curl -s {a.url}/.well-known/vault-federation")
        print(
            f"\nVerified by the client:\n  vault-registry --url {a.url} --token {token} "
            f"--federation-key '{setup['vkey']}' lookup NUMBER\n\nCtrl-C stops the three."
        )
        while all(node.process.poll() is None for node in nodes):
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        for node in nodes:
            node.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
