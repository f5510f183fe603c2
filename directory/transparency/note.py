"""C2SP signed notes (c2sp.org/signed-note) carrying tlog checkpoints (c2sp.org/tlog-checkpoint).

Pure Python (no Django). A checkpoint note's text is three lines, ``origin``, decimal tree size and
base64 root hash, each ending in a newline; signatures follow a blank line, one per line:
``— <key name> <base64(4-byte key hash ‖ Ed25519 signature)>``. The key hash of an Ed25519 key is
the first four bytes of SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ public key).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALG_ED25519 = b"\x01"
SIGNATURE_PREFIX = "\u2014 "  # em dash and a space


class NoteError(ValueError):
    """A note is malformed, or no signature from a known key verifies."""


def key_hash(name: str, public_key: bytes) -> bytes:
    """The 4-byte signed-note key ID of an Ed25519 key."""
    return hashlib.sha256(name.encode() + b"\n" + ALG_ED25519 + public_key).digest()[:4]


def verifier_key(name: str, public_key: bytes) -> str:
    """The standard text form of a note verifier key: ``name+hexhash+base64(0x01 ‖ key)``."""
    encoded = base64.b64encode(ALG_ED25519 + public_key).decode()
    return f"{name}+{key_hash(name, public_key).hex()}+{encoded}"


def _check_name(name: str) -> None:
    if not name or any(c.isspace() for c in name) or "+" in name:
        raise NoteError(f"invalid key name {name!r}")


def checkpoint_text(
    origin: str, size: int, root: bytes, *, map_root: bytes | None = None, time: int | None = None
) -> str:
    """The body of a checkpoint note (before signatures).

    The registry's checkpoints carry two extension lines (c2sp.org/tlog-checkpoint allows
    them after the root hash): ``map <base64 state-map root>`` and ``time <unix seconds>``, so
    one signature binds the log, the state map derived from it, and the time of signing.
    """
    if not origin or "\n" in origin:
        raise NoteError("invalid origin line")
    text = f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"
    if map_root is not None:
        text += f"map {base64.b64encode(map_root).decode()}\n"
    if time is not None:
        text += f"time {time}\n"
    return text


def sign(text: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """The signed note: ``text``, a blank line, and one Ed25519 signature line."""
    _check_name(name)
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    public = private_key.public_key().public_bytes_raw()
    signature = private_key.sign(text.encode())
    blob = base64.b64encode(key_hash(name, public) + signature).decode()
    return f"{text}\n{SIGNATURE_PREFIX}{name} {blob}\n"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A parsed and verified checkpoint."""

    origin: str
    size: int
    root: bytes
    text: str
    note: str
    key_name: str
    map_root: bytes | None = None
    time: int | None = None


def _split(note: str) -> tuple[str, list[tuple[str, bytes, bytes]]]:
    text, sep, sigs = note.rpartition("\n\n")
    if not sep or not note.endswith("\n"):
        raise NoteError("a signed note needs a text, a blank line and signature lines")
    text += "\n"
    signatures = []
    for line in sigs.removesuffix("\n").split("\n"):
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError("malformed signature line")
        name, _, blob = line[len(SIGNATURE_PREFIX) :].partition(" ")
        try:
            raw = base64.b64decode(blob, validate=True)
        except binascii.Error as exc:
            raise NoteError("malformed signature encoding") from exc
        if len(raw) < 5:
            raise NoteError("signature too short")
        signatures.append((name, raw[:4], raw[4:]))
    return text, signatures


def verify(note: str, keys: dict[str, list[bytes]]) -> tuple[str, str]:
    """Check ``note`` is signed by one of ``keys`` (name → Ed25519 public keys); (text, name).

    Signatures by unknown keys are ignored, as signed-note verifiers do; at least one signature
    must be by a known key and valid, and no signature by a known key may be invalid.
    """
    text, signatures = _split(note)
    verified = None
    for name, hash4, signature in signatures:
        for public in keys.get(name, []):
            if key_hash(name, public) != hash4:
                continue
            try:
                Ed25519PublicKey.from_public_bytes(public).verify(signature, text.encode())
            except InvalidSignature as exc:
                raise NoteError(f"invalid signature by {name}") from exc
            verified = name
    if verified is None:
        raise NoteError("no signature by a known key")
    return text, verified


def parse_checkpoint(note: str, keys: dict[str, list[bytes]], origin: str | None = None):
    """Verify a checkpoint note and parse its body; raises NoteError."""
    text, name = verify(note, keys)
    lines = text.split("\n")
    if len(lines) < 4:
        raise NoteError("a checkpoint has an origin, a size and a root hash")
    if origin is not None and lines[0] != origin:
        raise NoteError(f"checkpoint origin {lines[0]!r}, expected {origin!r}")
    if not lines[1].isdigit() or (lines[1] != "0" and lines[1].startswith("0")):
        raise NoteError("malformed tree size")
    try:
        root = base64.b64decode(lines[2], validate=True)
    except binascii.Error as exc:
        raise NoteError("malformed root hash") from exc
    if len(root) != 32:
        raise NoteError("root hash is not 32 bytes")
    map_root, time = _extensions(lines[3:-1])
    return Checkpoint(
        origin=lines[0],
        size=int(lines[1]),
        root=root,
        text=text,
        note=note,
        key_name=name,
        map_root=map_root,
        time=time,
    )


def _extensions(lines: list[str]) -> tuple[bytes | None, int | None]:
    """The ``map`` and ``time`` extension lines (each at most once); others are ignored."""
    map_root, time = None, None
    for line in lines:
        label, _, value = line.partition(" ")
        if label == "map":
            if map_root is not None:
                raise NoteError("two map lines")
            try:
                map_root = base64.b64decode(value, validate=True)
            except binascii.Error as exc:
                raise NoteError("malformed map root") from exc
            if len(map_root) != 32:
                raise NoteError("map root is not 32 bytes")
        elif label == "time":
            if time is not None or not value.isascii() or not value.isdigit():
                raise NoteError("malformed time line")
            time = int(value)
        elif not line:
            raise NoteError("empty line in a checkpoint body")
    return map_root, time
