"""Witness cosignatures (c2sp.org/tlog-cosignature) and the add-checkpoint request body
(c2sp.org/tlog-witness), as the witness and the registry both speak them. Pure: no Django.

A cosignature/v1 is a signed-note signature line ``— <name> base64(key ID ‖ timestamp ‖ sig)``:
the key ID is SHA-256(name ‖ 0x0A ‖ 0x04 ‖ Ed25519 public key)[:4], the timestamp a big-endian
uint64 of POSIX seconds, and the Ed25519 signature covers ``cosignature/v1\\ntime <ts>\\n`` followed
by the whole checkpoint text, extension lines (here the ``map`` and ``time`` lines) included.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALG_COSIGNATURE_V1 = b"\x04"  # signed-note signature type of timestamped Ed25519 cosignatures
ALG_ED25519 = b"\x01"  # plain Ed25519 note signatures, as logs sign checkpoints
HEADER = "cosignature/v1\n"
SIGNATURE_PREFIX = "\u2014 "  # em dash and a space
MAX_TIMESTAMP = (1 << 63) - 1
MAX_PROOF_LINES = 63  # tlog-witness: a client MUST NOT send more
MAX_SIGNATURES = 64  # signed-note: verifiers SHOULD bound it and MUST accept at least 16
_BLOB_SIZE = 4 + 8 + 64
_SIZE = re.compile(r"0|[1-9][0-9]{0,18}")


class CosignatureError(ValueError):
    """A cosignature, a witness key or an add-checkpoint body is malformed or does not verify."""


class NoQuorum(CosignatureError):
    """Fewer valid, fresh cosignatures than the policy's quorum."""


def _check_name(name: str) -> None:
    if not name or any(c.isspace() for c in name) or "+" in name:
        raise CosignatureError(f"invalid key name {name!r}")


def key_hash(name: str, public_key: bytes, algorithm: bytes = ALG_COSIGNATURE_V1) -> bytes:
    """The 4-byte signed-note key ID of a key of ``algorithm`` (cosignature/v1 by default)."""
    return hashlib.sha256(name.encode() + b"\n" + algorithm + public_key).digest()[:4]


def verifier_key(name: str, public_key: bytes, algorithm: bytes = ALG_COSIGNATURE_V1) -> str:
    """The vkey text form: ``name+<hex key ID>+base64(algorithm ‖ public key)``."""
    _check_name(name)
    encoded = base64.b64encode(algorithm + public_key).decode()
    return f"{name}+{key_hash(name, public_key, algorithm).hex()}+{encoded}"


def parse_vkey(vkey: str, algorithm: bytes = ALG_COSIGNATURE_V1) -> tuple[str, bytes]:
    """(name, Ed25519 public key) of a vkey of ``algorithm``; the key ID must match the key."""
    name, sep1, rest = vkey.strip().partition("+")
    hash_hex, sep2, encoded = rest.partition("+")
    if not (sep1 and sep2):
        raise CosignatureError("a vkey is name+hash+base64(type ‖ key)")
    _check_name(name)
    try:
        raw = base64.b64decode(encoded, validate=True)
        claimed = bytes.fromhex(hash_hex)
    except (binascii.Error, ValueError) as exc:
        raise CosignatureError("malformed vkey encoding") from exc
    if raw[:1] != algorithm:
        raise CosignatureError(f"vkey type {raw[:1].hex()!r}, expected {algorithm.hex()!r}")
    public = raw[1:]
    if len(public) != 32 or len(hash_hex) != 8:
        raise CosignatureError("a vkey holds a 32-byte Ed25519 key and an 8-digit hex key ID")
    if claimed != key_hash(name, public, algorithm):
        raise CosignatureError("the vkey's key ID does not match its name and key")
    return name, public


def signed_message(checkpoint_text: str, timestamp: int) -> bytes:
    """What a cosignature/v1 signs: header line, time line, then the checkpoint text."""
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise CosignatureError("cosignature timestamp out of range")
    if not checkpoint_text.endswith("\n"):
        raise CosignatureError("checkpoint text must end with a newline")
    return f"{HEADER}time {timestamp}\n{checkpoint_text}".encode()


def sign_cosignature(
    checkpoint_text: str, name: str, private_key: Ed25519PrivateKey, timestamp: int
) -> str:
    """A cosignature/v1 signature line on ``checkpoint_text``, newline included."""
    _check_name(name)
    public = private_key.public_key().public_bytes_raw()
    signature = private_key.sign(signed_message(checkpoint_text, timestamp))
    blob = key_hash(name, public) + timestamp.to_bytes(8, "big") + signature
    return f"{SIGNATURE_PREFIX}{name} {base64.b64encode(blob).decode()}\n"


def split_note(note: str) -> tuple[str, list[tuple[str, bytes]]]:
    """A signed note's text (final newline included) and its (key name, raw signature) lines.

    Strict per c2sp.org/signed-note: no control characters but newline, the text separated
    from one or more signature lines by the last blank line.
    """
    if any(c < " " and c != "\n" for c in note):
        raise CosignatureError("a note must not contain control characters")
    text, sep, block = note.rpartition("\n\n")
    if not sep or not text or not block.endswith("\n"):
        raise CosignatureError("a signed note is a text, a blank line and signature lines")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise CosignatureError("too many signatures on the note")
    signatures = []
    for line in lines:
        if not line.startswith(SIGNATURE_PREFIX):
            raise CosignatureError("malformed signature line")
        name, space, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
        _check_name(name)
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error as exc:
            raise CosignatureError("malformed signature encoding") from exc
        if not space or len(raw) < 5:
            raise CosignatureError("malformed signature line")
        signatures.append((name, raw))
    return text + "\n", signatures


def verify_cosignatures(note: str, witnesses: dict[str, list[bytes]]) -> dict[str, int]:
    """The witnesses (name → Ed25519 public keys) that cosigned ``note``, with their timestamps.

    Lines whose name and key ID match no configured key are ignored (other witnesses, the log's
    own signature); a matching line that does not verify refuses the whole note. Only the
    cosignatures are checked here: the log's signature is the caller's business. When a witness
    signed twice, its latest timestamp is kept.
    """
    text, signatures = split_note(note)
    found: dict[str, int] = {}
    for name, raw in signatures:
        for public in witnesses.get(name, []):
            if raw[:4] != key_hash(name, public):
                continue
            if len(raw) != _BLOB_SIZE:
                raise CosignatureError(f"malformed cosignature by {name}")
            timestamp = int.from_bytes(raw[4:12], "big")
            try:
                Ed25519PublicKey.from_public_bytes(public).verify(
                    raw[12:], signed_message(text, timestamp)
                )
            except InvalidSignature as exc:
                raise CosignatureError(f"invalid cosignature by {name}") from exc
            found[name] = max(found.get(name, 0), timestamp)
    return found


# --- The add-checkpoint request body (c2sp.org/tlog-witness) ----------------------------------


def add_checkpoint_body(old_size: int, proof: list[bytes], note: str) -> bytes:
    """``old <size>``, one base64 consistency-proof hash per line, a blank line, the note."""
    if old_size < 0 or len(proof) > MAX_PROOF_LINES:
        raise CosignatureError("invalid old size or too long a proof")
    if old_size == 0 and proof:
        raise CosignatureError("the proof from size 0 must be empty")
    lines = [f"old {old_size}\n"] + [base64.b64encode(h).decode() + "\n" for h in proof]
    return ("".join(lines) + "\n" + note).encode()


def parse_add_checkpoint(body: bytes) -> tuple[int, list[bytes], str]:
    """(old size, consistency proof, signed checkpoint note) of an add-checkpoint body.

    Strict: UTF-8; a canonical decimal old size; at most 63 proof lines, each the canonical
    base64 of a 32-byte hash; none when the old size is 0; then a blank line and a note.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CosignatureError("the body is not UTF-8") from exc
    head, sep, note = text.partition("\n\n")
    if not sep or not note:
        raise CosignatureError("the body needs an old size line, a blank line and a checkpoint")
    lines = head.split("\n")
    if not lines[0].startswith("old ") or not _SIZE.fullmatch(lines[0][4:]):
        raise CosignatureError("malformed old size line")
    old_size = int(lines[0][4:])
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise CosignatureError("more than 63 consistency proof lines")
    proof = []
    for line in lines[1:]:
        try:
            digest = base64.b64decode(line, validate=True)
        except binascii.Error as exc:
            raise CosignatureError("malformed proof line") from exc
        if len(digest) != 32 or base64.b64encode(digest).decode() != line:
            raise CosignatureError("a proof line is not the base64 of a 32-byte hash")
        proof.append(digest)
    if old_size == 0 and proof:
        raise CosignatureError("the proof from size 0 must be empty")
    split_note(note)
    return old_size, proof, note


# --- Client policy ----------------------------------------------------------------------------


@dataclass(frozen=True)
class WitnessPolicy:
    """Which witnesses a client trusts (name → cosignature/v1 Ed25519 key) and how many it needs.

    ``future_skew`` tolerates witness clocks ahead of ours; a cosignature further in the future,
    or older than ``max_age``, does not count.
    """

    witnesses: dict[str, bytes]
    quorum: int
    future_skew: int = field(default=300)

    def __post_init__(self) -> None:
        if not 0 <= self.quorum <= len(self.witnesses):
            raise ValueError(f"quorum {self.quorum} of {len(self.witnesses)} witnesses")

    @classmethod
    def from_vkeys(cls, vkeys: list[str], quorum: int) -> WitnessPolicy:
        return cls(witnesses=dict(parse_vkey(v) for v in vkeys), quorum=quorum)

    def check(self, note: str, *, now: int, max_age: int) -> list[str]:
        """The names of the witnesses whose fresh cosignatures count; NoQuorum if too few."""
        found = verify_cosignatures(note, {n: [k] for n, k in self.witnesses.items()})
        fresh = sorted(
            name
            for name, timestamp in found.items()
            if now - max_age <= timestamp <= now + self.future_skew
        )
        if len(fresh) < self.quorum:
            raise NoQuorum(
                f"{len(fresh)} fresh cosignatures ({', '.join(fresh) or 'none'}), "
                f"{self.quorum} required"
            )
        return fresh
