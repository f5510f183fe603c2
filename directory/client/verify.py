"""Verifying what the registry says: pinned keys, checkpoints, witnesses, proofs, every field.

A lookup answer is accepted only when all of this holds, each failure with its own error:
the checkpoint is signed by a pinned log key for the pinned origin, fresh enough, and cosigned
by the witness quorum required; the vault's and provider's records hash to the values their map
proofs give under the checkpoint's map root, under the keys of the number asked and of the
vault's provider; the HTTP status is the one those records imply; every field of the body is the
one ``records.lookup_fields`` computes from them at the time answered; each certificate's PEM
hashes to its proven fingerprint; and the receipt, signed by a pinned receipt key, signs that
same answer and checkpoint.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

from directory.client.errors import (
    BadCheckpoint,
    CertificateMismatch,
    Expired,
    Inconsistent,
    NoQuorum,
    ProofMismatch,
    RefusedNumber,
    RegistryError,
    RolledBack,
    Stale,
    Tampered,
    UnknownKey,
)
from directory.transparency import cosignature, merkle, note, statemap
from directory.transparency import records as rec
from directory.transparency.answers import PROVEN_FIELDS, answer_projection
from registry.numbers import compact, format_display

ALG = "Ed25519"
LEEWAY = 60  # seconds of clock skew tolerated on times
DEFAULT_MAX_AGE = 3600  # a checkpoint older than this (seconds) is refused


def epoch(stamp: str | None) -> float | None:
    if not stamp:
        return None
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@dataclass
class ReceiptKey:
    kid: str
    jwk: OKPKey
    valid_from: float | None
    valid_until: float | None


@dataclass
class PinnedKeys:
    """The registry's public keys as pinned by the user (its /.well-known/vault-registry JSON)."""

    origin: str
    log_keys: dict[str, list[bytes]] = field(default_factory=dict)
    receipt_keys: dict[str, ReceiptKey] = field(default_factory=dict)
    allocators: frozenset[str] | None = None  # the allocator codes the registry knows
    country: str | None = None  # the federation's country

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> PinnedKeys:
        keys = cls(origin=document["origin"])
        if isinstance(document.get("allocators"), list):
            keys.allocators = frozenset(document["allocators"])
        if isinstance(document.get("country"), str):
            keys.country = document["country"]
        for entry in document.get("log_keys", []):
            public = base64.b64decode(entry["public_key"])
            keys.log_keys.setdefault(entry["name"], []).append(public)
        for entry in document.get("receipt_keys", []):
            public = base64.b64decode(entry["public_key"])
            jwk = OKPKey.import_key(
                {
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": base64.urlsafe_b64encode(public).rstrip(b"=").decode(),
                }
            )
            keys.receipt_keys[entry["kid"]] = ReceiptKey(
                entry["kid"], jwk, epoch(entry.get("valid_from")), epoch(entry.get("valid_until"))
            )
        return keys

    @classmethod
    def from_file(cls, path: str | Path) -> PinnedKeys:
        return cls.from_document(json.loads(Path(path).read_text()))


@dataclass
class Trust:
    """What the client requires of every answer: the pinned keys, the witness policy (None:
    no witness required, and the client says so) and the oldest checkpoint accepted."""

    keys: PinnedKeys
    witnesses: cosignature.WitnessPolicy | None = None
    max_age: float = DEFAULT_MAX_AGE


def verify_checkpoint(text: str, keys: PinnedKeys) -> note.Checkpoint:
    """A checkpoint signed by a pinned log key, for the pinned origin, binding a map root and a
    time; else BadCheckpoint."""
    try:
        checkpoint = note.parse_checkpoint(text, keys.log_keys, origin=keys.origin)
    except note.NoteError as exc:
        raise BadCheckpoint(f"checkpoint refused: {exc}") from exc
    if checkpoint.map_root is None or checkpoint.time is None:
        raise BadCheckpoint("the checkpoint binds no state map root or no time")
    return checkpoint


def check_trusted(
    text: str, trust: Trust, *, now: float, at: float | None = None
) -> tuple[note.Checkpoint, list[str]]:
    """Signature, freshness and witnesses of a checkpoint; returns it and its cosigners.

    Without ``at``, the checkpoint must be younger than ``trust.max_age``; with ``at`` (an
    answer about a past time), it must have been signed at or before that time.
    """
    checkpoint = verify_checkpoint(text, trust.keys)
    signed_at = checkpoint.time or 0
    if signed_at > now + LEEWAY:
        raise BadCheckpoint("the checkpoint is signed in the future")
    if at is None and now - signed_at > trust.max_age:
        raise Stale(
            f"the checkpoint was signed {int(now - signed_at)} s ago (more than "
            f"{int(trust.max_age)} s): the registry may be hiding newer changes"
        )
    if at is not None and signed_at > at + LEEWAY:
        raise ProofMismatch("the answer about a past time is proven by a later checkpoint")
    cosigners: list[str] = []
    if trust.witnesses is not None:
        try:
            cosigners = trust.witnesses.check(
                text, now=now, max_age=trust.max_age if at is None else 10 * 365 * 86400
            )
        except cosignature.CosignatureError as exc:
            raise NoQuorum(f"witness policy not met: {exc}") from exc
    return checkpoint, cosigners


def check_consistent(old: tuple[int, bytes] | None, new: note.Checkpoint, fetch_proof) -> None:
    """Check ``new`` extends (or is extended by) the checkpoint ``old`` (size, root) seen before.

    ``fetch_proof(size1, size2)`` returns the registry's consistency proof (base64 hashes).
    """
    if old is None or old[0] == 0:
        return
    size0, root0 = old
    if new.size == size0:
        if new.root != root0:
            raise Inconsistent(f"two different trees of size {size0}: the log was rewritten")
        return
    small, large = ((size0, root0), (new.size, new.root))[:: 1 if size0 < new.size else -1]
    proof = [base64.b64decode(h) for h in fetch_proof(small[0], large[0])]
    try:
        merkle.verify_consistency(small[0], large[0], proof, small[1], large[1])
    except merkle.ProofError as exc:
        raise Inconsistent(
            f"the checkpoint of size {new.size} is not consistent with the one of size {size0} "
            f"this client saw before: the log was rewritten ({exc})"
        ) from exc


class StateFile:
    """The last checkpoint a client accepted, and the evidence of any conflict with it.

    A checkpoint smaller than the one seen (a rollback), another root at the same size (a
    fork) or one the registry cannot prove consistent is refused, and both signed notes are
    saved in ``<state>.evidence/``: together they prove the registry showed two histories.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def seen(self) -> dict[str, Any] | None:
        return json.loads(self.path.read_text()) if self.path.exists() else None

    def evidence_dir(self) -> Path:
        return self.path.with_name(self.path.name + ".evidence")

    def _keep_evidence(self, reason: str, seen: dict[str, Any], served: note.Checkpoint) -> Path:
        folder = self.evidence_dir() / f"{int(time.time())}-{reason}-{served.size}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "seen.note").write_text(seen.get("note", ""))
        (folder / "served.note").write_text(served.note)
        return folder

    def check_older(self, checkpoint: note.Checkpoint, fetch_proof) -> None:
        """An answer about a past time is proven by an older checkpoint: it must be consistent
        with the one seen (the seen one extends it); the state does not move back."""
        seen = self.seen()
        if seen is None or checkpoint.size > seen["size"]:
            self.advance(checkpoint, fetch_proof)
            return
        try:
            check_consistent((seen["size"], bytes.fromhex(seen["root"])), checkpoint, fetch_proof)
        except Inconsistent as exc:
            folder = self._keep_evidence("inconsistent", seen, checkpoint)
            raise Inconsistent(f"{exc.args[0]}; evidence kept in {folder}") from exc

    def advance(self, checkpoint: note.Checkpoint, fetch_proof) -> None:
        seen = self.seen()
        if seen is not None:
            try:
                if checkpoint.size < seen["size"]:
                    raise RolledBack(
                        f"the registry serves a checkpoint of size {checkpoint.size}, older than "
                        f"the size {seen['size']} this client saw: a rollback"
                    )
                check_consistent(
                    (seen["size"], bytes.fromhex(seen["root"])), checkpoint, fetch_proof
                )
            except Inconsistent as exc:
                folder = self._keep_evidence(type(exc).__name__.lower(), seen, checkpoint)
                raise type(exc)(f"{exc.args[0]}; evidence kept in {folder}") from exc
            if checkpoint.size == seen["size"]:
                return
        self.path.write_text(
            json.dumps(
                {"size": checkpoint.size, "root": checkpoint.root.hex(), "note": checkpoint.note}
            )
        )


# --- Receipts ------------------------------------------------------------------------------


def _header(token: str) -> dict[str, Any]:
    try:
        encoded = token.split(".")[0]
        return json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (ValueError, IndexError, binascii.Error) as exc:
        raise Tampered("the receipt is not a compact JWS") from exc


def verify_receipt(token: str, keys: PinnedKeys, *, now: float | None = None) -> dict[str, Any]:
    """A receipt's payload, once its key, signature and validity are checked: UnknownKey,
    Tampered or Expired otherwise."""
    now = time.time() if now is None else now
    if not isinstance(token, str) or not token:
        raise Tampered("the answer carries no receipt")
    header = _header(token)
    if header.get("alg") != ALG:
        raise Tampered(f"receipt algorithm {header.get('alg')!r}, expected {ALG}")
    key = keys.receipt_keys.get(str(header.get("kid")))
    if key is None:
        raise UnknownKey(f"the receipt is signed by key {header.get('kid')!r}, not a pinned key")
    try:
        payload = json.loads(jws.deserialize_compact(token, key.jwk, algorithms=[ALG]).payload)
    except (JoseError, ValueError) as exc:
        raise Tampered(f"the receipt's signature does not verify ({exc})") from exc
    iat, exp = payload.get("iat"), payload.get("exp")
    if not isinstance(iat, int) or not isinstance(exp, int):
        raise Tampered("the receipt has no issue or expiry time")
    if now > exp + LEEWAY:
        raise Expired(f"the receipt expired {int(now - exp)} s ago")
    if iat > now + LEEWAY:
        raise Tampered("the receipt is issued in the future")
    if (key.valid_from and iat < key.valid_from - LEEWAY) or (
        key.valid_until and iat > key.valid_until + LEEWAY
    ):
        raise UnknownKey(f"key {key.kid} was not valid when this receipt was issued")
    if payload.get("iss") != keys.origin:
        raise Tampered("the receipt is issued for another registry")
    return payload


def same_checkpoint(a: str | None, b: str) -> bool:
    """Two notes with the same signed text (cosignatures may be added after a receipt)."""
    return bool(a) and a.partition("\n\n")[0] == b.partition("\n\n")[0]


# --- Map proofs ----------------------------------------------------------------------------


def verify_records(
    root: bytes, proof_b64: str, records: dict[str, rec.Record | None]
) -> dict[str, rec.Record | None]:
    """Check that each key maps to its record (None: absent) in the map of ``root``."""
    try:
        proof = base64.b64decode(proof_b64, validate=True)
    except (binascii.Error, TypeError, ValueError) as exc:
        raise ProofMismatch("the map proof is not base64") from exc
    paths = {statemap.path_of(key): key for key in records}
    try:
        values = statemap.verify_multiproof(root, list(paths), proof)
    except statemap.MapProofError as exc:
        raise ProofMismatch(f"the map proof does not verify: {exc}") from exc
    for path, key in paths.items():
        record, value = records[key], values.get(path)
        if record is None and value is not None:
            raise ProofMismatch(f"{key} is in the signed map, but was answered absent")
        if record is not None:
            if value is None:
                raise ProofMismatch(f"{key} is absent from the signed map")
            try:
                if rec.key_of(record) != key or rec.value_of(record) != value:
                    raise ProofMismatch(f"the record of {key} is not the one the map signs")
            except (rec.RecordError, TypeError, ValueError) as exc:
                raise ProofMismatch(f"the record of {key} is malformed") from exc
    return records


def verify_record(root: bytes, proof_b64: str, key: str, record: rec.Record | None) -> None:
    """Check a lookup's evidence: ``key`` maps to ``record`` (None: absent) in the map of
    ``root``, by its path proof (``statemap.PartialTree.encode_path``)."""
    try:
        proof = base64.b64decode(proof_b64, validate=True)
    except (binascii.Error, TypeError, ValueError) as exc:
        raise ProofMismatch("the map proof is not base64") from exc
    try:
        value = rec.value_of(record) if record is not None else None
    except (TypeError, ValueError) as exc:
        raise ProofMismatch(f"the record of {key} is malformed") from exc
    if value is None and proof[-1:] == bytes((statemap.TAG_OWN_LEAF,)):
        raise ProofMismatch(f"{key} is in the signed map, but was answered absent")
    try:
        expanded = statemap.expand_path(statemap.path_of(key), proof, value)
    except statemap.MapProofError as exc:
        raise ProofMismatch(f"the map proof does not verify: {exc}") from exc
    verify_records(root, base64.b64encode(expanded).decode(), {key: record})


def pem_fingerprint(pem: str) -> str:
    """SHA-256 (hex) of the DER of a PEM certificate."""
    try:
        der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(Encoding.DER)
    except (ValueError, TypeError, AttributeError) as exc:
        raise CertificateMismatch("a certificate's PEM does not parse") from exc
    return hashlib.sha256(der).hexdigest()


# --- Lookups -------------------------------------------------------------------------------


@dataclass
class VerifiedLookup:
    """A lookup answer whose every field is proven; ``as_dict`` is all a client may act on."""

    status: int
    number: str
    at: str
    checkpoint: note.Checkpoint
    cosigners: list[str]
    fields: dict[str, Any] | None
    vault: rec.Record | None
    provider: rec.Record | None
    receipt: dict[str, Any]
    pems: dict[str, str] = field(default_factory=dict)  # certificate id → its checked PEM

    def as_dict(self) -> dict[str, Any]:
        """The verified answer: the proven fields (with the checked PEMs), the status, the
        time, the checkpoint and who cosigned it; nothing the proofs do not cover."""
        answer: dict[str, Any] = {
            "status": self.status,
            "number": self.number,
            "display": format_display(self.number),
            "at": self.at,
            "checkpoint": {"size": self.checkpoint.size, "time": self.checkpoint.time},
            "cosigners": self.cosigners,
        }
        if self.fields is not None:
            answer.update(self.fields)
            answer["encryption_certificates"] = [
                {**c, "pem": self.pems.get(c["id"])} for c in self.fields["encryption_certificates"]
            ]
        return answer


def _evidence(proof: dict[str, Any], name: str, key: str) -> tuple[rec.Record | None, str]:
    part = proof.get(name)
    if not isinstance(part, dict) or part.get("key") != key:
        raise ProofMismatch(f"the answer proves another {name} than the one asked about")
    record = part.get("record")
    if record is not None and not isinstance(record, dict):
        raise ProofMismatch(f"the {name} record is malformed")
    return record, part.get("proof", "")


def verify_lookup(
    asked: str,
    asked_at: str | None,
    status: int,
    body: dict[str, Any],
    trust: Trust,
    *,
    purpose: str | None = None,
    now: float | None = None,
) -> VerifiedLookup:
    """Verify a lookup answer to the question (``asked``, ``asked_at``, ``purpose``)
    completely: with a purpose, the endpoints and reasons are those the proven provider record
    gives for its document type."""
    now = time.time() if now is None else now
    purpose = purpose or None
    number = compact(asked)
    if body.get("code") == "no_checkpoint":  # nothing signed (then): nothing to verify or use
        raise RegistryError(status, body.get("detail", "no checkpoint"))
    receipt = verify_receipt(body.get("receipt"), trust.keys, now=now)
    if compact(str((receipt.get("asked") or {}).get("number", ""))) != number:
        raise Tampered("the receipt answers another number than the one asked")
    if (receipt.get("asked") or {}).get("purpose") != purpose:
        raise Tampered("the receipt answers another purpose than the one asked")
    if status == 400:
        answer = receipt.get("answer") or {}
        if answer.get("status") != 400 or answer.get("code") != body.get("code"):
            raise Tampered("the refusal differs from what its receipt signed")
        raise RefusedNumber(f"{body.get('code')}: {body.get('detail', '')}")
    proof = body.get("proof")
    if not isinstance(proof, dict):
        raise ProofMismatch(f"HTTP {status} without a proof")
    at = proof.get("at")
    at_epoch = epoch(at) if isinstance(at, str) else None
    if at_epoch is None:
        raise ProofMismatch("the answer does not say the time it holds for")
    asked_epoch = epoch(asked_at) if asked_at else None
    if asked_epoch is not None and abs(at_epoch - asked_epoch) > 1e-3:
        raise ProofMismatch(f"asked about {asked_at}, answered about {at}")
    if asked_epoch is None and abs(at_epoch - now) > LEEWAY:
        raise ProofMismatch(f"the answer holds for {at}, not for now")
    checkpoint, cosigners = check_trusted(
        proof.get("checkpoint", ""), trust, now=now, at=asked_epoch
    )
    vault, vault_proof = _evidence(proof, "vault", rec.vault_key(number))
    verify_record(checkpoint.map_root, vault_proof, rec.vault_key(number), vault)
    provider = None
    if vault is None:
        expected = 404
    elif vault.get("status") == "closed":
        expected = 410
    else:
        expected = 200
        provider, provider_proof = _evidence(proof, "provider", rec.provider_key(vault["provider"]))
        if provider is None:
            raise ProofMismatch("the vault's provider is absent from the signed map")
        verify_record(
            checkpoint.map_root, provider_proof, rec.provider_key(vault["provider"]), provider
        )
    if status != expected:
        raise ProofMismatch(f"HTTP {status}, but the signed state says {expected}")
    fields = rec.lookup_fields(vault, provider, at, purpose) if provider is not None else None
    pems: dict[str, str] = {}
    if fields is not None:
        if body.get("number") != number or body.get("display") != format_display(number):
            raise Tampered("the answer is about another number")
        if body.get("at") != at:
            raise ProofMismatch("the answer's time is not the one its proof holds for")
        for name in PROVEN_FIELDS:
            if without_pem(body.get(name)) != fields[name]:
                raise ProofMismatch(f"the answer's {name} is not what the signed records say")
        for certificate in body.get("encryption_certificates", []):
            if pem_fingerprint(certificate.get("pem") or "") != certificate["fingerprint_sha256"]:
                raise CertificateMismatch(
                    f"certificate {certificate['id']}: the PEM served is not the certificate "
                    "the log publishes"
                )
            pems[certificate["id"]] = certificate["pem"]
    if receipt.get("answer") != answer_projection(status, number, at, fields):
        raise Tampered("the answer differs from what its receipt signed")
    if not same_checkpoint(receipt.get("checkpoint"), checkpoint.note):
        raise Tampered("the receipt is bound to another checkpoint")
    return VerifiedLookup(
        status,
        number,
        at,
        checkpoint,
        cosigners,
        fields,
        vault,
        provider,
        receipt,
        pems,
    )


def without_pem(value: Any) -> Any:
    if isinstance(value, list) and value and isinstance(value[0], dict) and "pem" in value[0]:
        return [{k: v for k, v in item.items() if k != "pem"} for item in value]
    return value
