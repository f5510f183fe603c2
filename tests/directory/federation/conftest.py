"""A federation around the test registry: a federation key, this registry as member ``self``
(allocator VLT1, its real keys) and a peer ``peer-b`` (allocator VLT2) whose keys tests hold."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command

from directory.federation.services import federation_document_install
from directory.transparency import federation as fed
from directory.transparency import note
from registry.services.common import Actor

SELF_URL = "http://testserver"
PEER_URL = "http://peer-b.test"


@dataclass
class Peer:
    name: str
    url: str
    allocator: str
    request_key: Ed25519PrivateKey
    log_key: Ed25519PrivateKey

    def entry(self, status: str = "active") -> dict:
        public = self.request_key.public_key().public_bytes_raw()
        log_public = self.log_key.public_key().public_bytes_raw()
        return {
            "name": self.name,
            "status": status,
            "allocators": [self.allocator],
            "url": self.url,
            "origin": f"{self.name}/log",
            "log_vkey": note.verifier_key(f"{self.name}/log", log_public),
            "receipt_keys": [{"kid": "k-" + self.name, "public_key": _b64(log_public)}],
            "request_key": _b64(public),
        }


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.fixture(scope="session")
def federation_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="session")
def peer_b() -> Peer:
    return Peer(
        "peer-b", PEER_URL, "VLT2", Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    )


@pytest.fixture
def self_entry(signing_key_dir, capsys) -> dict:
    """This registry's member entry, as ``manage.py federation member`` prints it."""
    import json

    call_command("federation", "member", "--url", SELF_URL, "--name", "self")
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def pin(settings, federation_key):
    settings.VAULT_FEDERATION_KEYS = [
        note.verifier_key("fed.test", federation_key.public_key().public_bytes_raw())
    ]


@pytest.fixture
def document(self_entry, peer_b):
    """Build a document (a dict) with a serial and optional member overrides."""

    def build(serial: int = 1, *, peer_status: str = "active", **extra) -> dict:
        return {
            "federation": "fed.test",
            "serial": serial,
            "country": "FR",
            "quorum": 0,
            "members": [self_entry, peer_b.entry(peer_status)],
            **extra,
        }

    return build


@pytest.fixture
def sign(federation_key):
    def signed(data: dict, key: Ed25519PrivateKey | None = None) -> str:
        return fed.sign(data, "fed.test", key or federation_key)

    return signed


@pytest.fixture
def federation(db, pin, document, sign):
    """The document (serial 1) installed: this registry knows its peer."""
    return federation_document_install(actor=Actor.system("tests"), signed=sign(document()))


@pytest.fixture(scope="module")
def real_federation(django_db_setup, tmp_path_factory):
    """Three registries as real gunicorn processes, set up as ``make federation`` does
    (``deploy/federation.py``): own databases (on PostgreSQL three databases named after the
    test database, dropped after; else SQLite files in a temporary directory), own keys, a
    signed bootstrap and a small demo in each, on free ports. Every process is stopped after
    the module, also when a test or the setup fails."""
    from urllib.parse import quote

    from django.db import connection

    from deploy.federation import LocalFederation

    urls = None
    if connection.vendor == "postgresql":
        db = connection.settings_dict
        credentials = quote(db["USER"] or "postgres") + (
            f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else ""
        )
        server = f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
        urls = [f"{server}/{db['NAME']}_fed_{letter}" for letter in "abc"]
    base = tmp_path_factory.mktemp("federation")
    with LocalFederation(base, database_urls=urls, workers=1, vaults=60, drop=True) as federation:
        yield federation
