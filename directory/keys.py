"""The registry's Ed25519 signing keys: the log key (checkpoints), the receipt key (answers) and
the peer key (its requests to other registries of the federation).

Private keys are PKCS#8 PEM files (mode 0600) in ``settings.VAULT_KEY_DIR``, never in the database,
the repository, a response or a log line. Next to them, ``public.json`` lists every public key the
registry ever used, with its validity window, so that old receipts and checkpoints stay verifiable
after a rotation; ``/.well-known/vault-registry`` serves it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from directory.transparency import note

MANIFEST = "public.json"


class Purpose(StrEnum):
    """What a key signs."""

    LOG = "log"
    RECEIPT = "receipt"
    PEER = "peer"  # RFC 9421 signatures of registry-to-registry requests (federation)


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A loaded private key with its public identity (name for the log key, kid for receipts)."""

    purpose: Purpose
    private: Ed25519PrivateKey
    public: bytes
    name: str
    kid: str

    def __repr__(self) -> str:  # never print key material
        return f"SigningKey({self.purpose}, {self.kid})"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def b64url(data: bytes) -> bytes:
    """Base64url without padding, as JOSE writes it (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def receipt_kid(public: bytes) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url) of an Ed25519 public key."""
    x = b64url(public).decode()
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"))
    return b64url(hashlib.sha256(canonical.encode()).digest()).decode()


def _key_dir() -> Path:
    return Path(settings.VAULT_KEY_DIR)


def _read_manifest(directory: Path) -> dict[str, list[dict[str, Any]]]:
    path = directory / MANIFEST
    if not path.exists():
        return {Purpose.LOG: [], Purpose.RECEIPT: []}
    return json.loads(path.read_text())


def _write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    tmp = directory / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    tmp.chmod(0o644)
    tmp.replace(directory / MANIFEST)


def _write_private(path: Path, key: Ed25519PrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # O_EXCL: never overwrite an existing key, even if two commands race.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)


def _entry(purpose: Purpose, public: bytes, name: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "public_key": base64.b64encode(public).decode(),
        "valid_from": _now(),
        "valid_until": None,
    }
    if purpose == Purpose.LOG:
        entry |= {"name": name, "key_hash": note.key_hash(name, public).hex()}
    else:
        entry |= {"kid": receipt_kid(public)}
    return entry


def _load_private(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ImproperlyConfigured(f"{path} is not an Ed25519 private key")
    return key


def generate(*, rotate: Purpose | None = None) -> list[str]:
    """Create the missing keys (never overwriting one) and list them in the manifest.

    With ``rotate``, the current key of that purpose is retired (kept under ``retired/`` and
    in the manifest with its ``valid_until``) and a new one is created. Returns what was done.
    """
    directory = _key_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    manifest = _read_manifest(directory)
    done = []
    for purpose in Purpose:
        path = directory / f"{purpose}.key"
        entries = manifest.setdefault(purpose, [])
        if rotate == purpose and path.exists():
            public = _load_private(path).public_key().public_bytes_raw()
            encoded = base64.b64encode(public).decode()
            for entry in entries:
                if entry["public_key"] == encoded and entry["valid_until"] is None:
                    entry["valid_until"] = _now()
            retired = directory / "retired"
            retired.mkdir(exist_ok=True, mode=0o700)
            path.rename(retired / f"{purpose}-{receipt_kid(public)}.key")
            done.append(f"retired the {purpose} key")
        if not path.exists():
            _write_private(path, Ed25519PrivateKey.generate())
            done.append(f"created the {purpose} key {path}")
        public = _load_private(path).public_key().public_bytes_raw()
        encoded = base64.b64encode(public).decode()
        if not any(entry["public_key"] == encoded for entry in entries):
            entries.append(_entry(purpose, public, settings.VAULT_LOG_ORIGIN))
    _write_manifest(directory, manifest)
    reset()
    return done


@lru_cache(maxsize=8)
def _load(directory: str, purpose: Purpose) -> SigningKey:
    path = Path(directory) / f"{purpose}.key"
    if not path.exists():
        raise ImproperlyConfigured(
            f"No {purpose} signing key in {directory}: run `manage.py generate_keys`."
        )
    private = _load_private(path)
    public = private.public_key().public_bytes_raw()
    encoded = base64.b64encode(public).decode()
    entry = next(
        (e for e in _read_manifest(Path(directory)).get(purpose, []) if e["public_key"] == encoded),
        None,
    )
    if entry is None:
        raise ImproperlyConfigured(f"The {purpose} key is not in {MANIFEST}: run generate_keys.")
    name = entry.get("name", "")
    return SigningKey(purpose, private, public, name=name, kid=entry.get("kid", name))


def signing_key(purpose: Purpose) -> SigningKey:
    """The current key of ``purpose``, loaded once per process and key directory."""
    return _load(str(settings.VAULT_KEY_DIR), purpose)  # no Path built: called per lookup


def public_manifest() -> dict[str, list[dict[str, Any]]]:
    """Every public key, current and retired, with its validity window."""
    return _read_manifest(_key_dir())


def reset() -> None:
    """Forget the loaded keys (after a rotation, or when tests switch key directories)."""
    _load.cache_clear()
