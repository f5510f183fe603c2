"""Verifying what the registry says: pinned keys, receipts, checkpoints and their consistency."""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

from directory.client.answers import found_answer
from directory.client.errors import (
    BadCheckpoint,
    Expired,
    Inconsistent,
    Pending,
    ProofMismatch,
    Tampered,
    UnknownKey,
)
from directory.transparency import merkle, note

ALG = "Ed25519"
LEEWAY = 60  # seconds of clock skew tolerated on iat/exp


def _epoch(stamp: str | None) -> float | None:
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

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> PinnedKeys:
        keys = cls(origin=document["origin"])
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
                entry["kid"], jwk, _epoch(entry.get("valid_from")), _epoch(entry.get("valid_until"))
            )
        return keys

    @classmethod
    def from_file(cls, path: str | Path) -> PinnedKeys:
        return cls.from_document(json.loads(Path(path).read_text()))


def verify_checkpoint(text: str, keys: PinnedKeys) -> note.Checkpoint:
    """A checkpoint signed by a pinned log key, for the pinned origin; else BadCheckpoint."""
    try:
        return note.parse_checkpoint(text, keys.log_keys, origin=keys.origin)
    except note.NoteError as exc:
        raise BadCheckpoint(f"checkpoint refused: {exc}") from exc


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


@dataclass
class VerifiedReceipt:
    payload: dict[str, Any]
    checkpoint: note.Checkpoint
    entry: dict[str, Any] | None

    @property
    def answer(self) -> dict[str, Any]:
        return self.payload["answer"]


def _header(token: str) -> dict[str, Any]:
    try:
        encoded = token.split(".")[0]
        return json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (ValueError, IndexError, binascii.Error) as exc:
        raise Tampered("the receipt is not a compact JWS") from exc


def verify_receipt(token: str, keys: PinnedKeys, *, now: float | None = None) -> VerifiedReceipt:
    """Verify a receipt completely: key, signature, expiry, checkpoint, inclusion of its entry.

    Each failure raises its own error: UnknownKey, Tampered, Expired, BadCheckpoint, Pending or
    ProofMismatch.
    """
    now = time.time() if now is None else now
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
    if not payload.get("checkpoint"):
        raise Pending("the receipt is not bound to any checkpoint")
    checkpoint = verify_checkpoint(payload["checkpoint"], keys)
    entry = _check_inclusion(payload, checkpoint)
    return VerifiedReceipt(payload, checkpoint, entry)


def _check_inclusion(payload: dict[str, Any], checkpoint: note.Checkpoint) -> dict[str, Any] | None:
    index = payload.get("log_index")
    if index is None:
        return None
    if payload.get("inclusion_proof") is None or payload.get("log_entry") is None:
        raise Pending(f"log entry {index} is newer than checkpoint {checkpoint.size}; retry later")
    try:
        body = base64.b64decode(payload["log_entry"], validate=True)
        proof = [base64.b64decode(h, validate=True) for h in payload["inclusion_proof"]]
        entry = json.loads(body)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ProofMismatch("the receipt's log entry or proof is malformed") from exc
    try:
        merkle.verify_inclusion(
            merkle.leaf_hash(body), index, checkpoint.size, proof, checkpoint.root
        )
    except merkle.ProofError as exc:
        raise ProofMismatch(
            f"log entry {index} is not in the signed checkpoint of size {checkpoint.size} ({exc})"
        ) from exc
    answer = payload.get("answer", {})
    if answer.get("number") and entry.get("vault") != answer["number"]:
        raise ProofMismatch(f"log entry {index} is about another vault")
    provider = (answer.get("provider") or {}).get("id")
    if provider and entry.get("provider") != provider:
        raise ProofMismatch(f"log entry {index} routes the vault to another provider")
    return entry


def check_body(body: dict[str, Any], verified: VerifiedReceipt) -> None:
    """The HTTP answer must say what the receipt signed."""
    if verified.answer.get("status") == 200 and found_answer(body) != verified.answer:
        raise Tampered("the answer differs from what its receipt signed")
