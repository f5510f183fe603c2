"""Answers read from the state map at a signed checkpoint, with the proofs that back them.

Nothing here reads the write side's tables for what an issuer acts on: a vault's and a provider's
records come from the state map (``directory.state``, derived from the log alone) as of the size
of the checkpoint served, and every field of an answer is computed from them by
``records.lookup_fields`` — the function the verifying client runs again on the proven records.
The only other read is a certificate's PEM, which the client hashes against the proven
fingerprint.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from django.utils import timezone

from directory import checkpoints, state
from directory.models import Checkpoint
from directory.transparency import records as rec
from registry.errors import DomainError, ErrorCode, Gone, NotFound
from registry.models import Certificate
from registry.services.common import timestamp


class NotSigned(DomainError):
    """No checkpoint signs the state yet (a registry that never published)."""

    def __init__(self, message: str = "The registry has not signed a checkpoint yet."):
        super().__init__(ErrorCode.NO_CHECKPOINT, message, status=503)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass(slots=True)
class Evidence:
    """A record (None: absent) and its map proof at one checkpoint."""

    key: str
    record: rec.Record | None
    proof: bytes
    value: bytes | None = None  # the map value: SHA-256 of the stored canonical bytes

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "record": self.record, "proof": b64(self.proof)}


def checkpoint_for(at: datetime | None) -> Checkpoint:
    """The checkpoint answers are proven against: the one served now, or the one in force at
    ``at``."""
    checkpoint = checkpoints.serving(at_or_before=at)
    if checkpoint is None:
        if at is not None:
            raise NotFound(ErrorCode.NO_CHECKPOINT, "The registry had signed nothing at that time.")
        raise NotSigned()
    return checkpoint


def evidence(key: str, size: int) -> Evidence:
    """A key's record at ``size`` with its map proof (one query on PostgreSQL, usually)."""
    data, proof = state.evidence(key, size)
    if data is None:
        return Evidence(key, None, proof)
    return Evidence(key, orjson.loads(data), proof, hashlib.sha256(data).digest())


@functools.lru_cache(maxsize=512)
def provider_evidence(provider_id: str, size: int) -> Evidence:
    """A provider's record and proof at a checkpoint: immutable, so cached per process."""
    return evidence(rec.provider_key(provider_id), size)


_pems: dict[str, str] = {}  # certificate id → PEM: immutable, cached per process


def attach_pems(certificates: list[dict[str, Any]]) -> None:
    """Add each certificate's PEM (one query for those not cached); the client checks that it
    hashes to the proven fingerprint, so this read of the table needs no trust."""
    missing = {c["id"] for c in certificates} - _pems.keys()
    if missing:
        if len(_pems) > 4096:
            _pems.clear()
        _pems.update(
            (str(pk), pem)
            for pk, pem in Certificate.objects.filter(pk__in=missing).values_list("id", "pem")
        )
    for certificate in certificates:
        certificate["pem"] = _pems.get(certificate["id"])


def clear_cache() -> None:
    provider_evidence.cache_clear()
    _pems.clear()
    state.clear_cache()


@dataclass(slots=True)
class Lookup:
    """A proven lookup: the HTTP status, the answer's fields and the evidence."""

    status: int
    number: str
    at: str
    checkpoint: Checkpoint
    fields: dict[str, Any] | None
    vault: Evidence
    provider: Evidence | None

    def proof(self) -> dict[str, Any]:
        return {
            "checkpoint": self.checkpoint.note,
            "at": self.at,
            "vault": self.vault.as_dict(),
            "provider": self.provider.as_dict() if self.provider else None,
        }

    def values(self) -> dict[str, str | None]:
        """The map values the receipt binds (hex), so the receipt alone says what was proven."""
        provider = self.provider.value if self.provider else None
        return {
            "vault": self.vault.value.hex() if self.vault.value else None,
            "provider": provider.hex() if provider else None,
        }


def lookup(number: str, at: datetime | None = None, purpose: str = "") -> Lookup:
    """Where vault ``number`` routes, at the checkpoint served (or the one in force at ``at``),
    for ``purpose`` when one is asked (the endpoints accepting its document type), proven: 200
    with both records, 410 for a closed vault, 404 with a proof of absence."""
    checkpoint = checkpoint_for(at)
    moment = timestamp(at or timezone.now())
    vault = evidence(rec.vault_key(number), checkpoint.size)
    if vault.record is None:
        return Lookup(404, number, moment, checkpoint, None, vault, None)
    if vault.record["status"] == "closed":
        return Lookup(410, number, moment, checkpoint, None, vault, None)
    provider = provider_evidence(vault.record["provider"], checkpoint.size)
    if provider.record is None:  # the log never named this provider: the map is inconsistent
        raise DomainError(ErrorCode.SERVER_ERROR, "The vault's provider has no record.", status=500)
    fields = rec.lookup_fields(vault.record, provider.record, moment, purpose)
    attach_pems(fields["encryption_certificates"])
    return Lookup(200, number, moment, checkpoint, fields, vault, provider)


def refusal(result: Lookup) -> DomainError:
    """The problem a 404 or 410 lookup answers, carrying its proof."""
    extra = {"number": result.number, "proof": result.proof()}
    if result.status == 404:
        return NotFound(ErrorCode.VAULT_NOT_FOUND, "No vault has this number.", extra=extra)
    return Gone(ErrorCode.VAULT_CLOSED, "This vault is closed; do not deliver to it.", extra=extra)
