"""The federation document (the bootstrap): who the member registries are, and their keys.

Pure (no Django): the registry verifies a document before installing it, the verifying client
verifies the copy a registry serves, and ``manage.py federation sign`` signs one offline.

Format: a C2SP signed note (c2sp.org/signed-note), Ed25519, signed by the federation's key, the
same format as the registry's checkpoints, so one verifier and one key text form (the note
verifier key ``name+hash+base64``) serve both. Its text is two lines::

    vault-federation/v1
    {"country":"FR","federation":"…","members":[…],"quorum":1,"serial":7}

The second line is the document's RFC 8785 (JCS) canonical JSON, so the signed bytes are one
well-defined encoding of it. A member is::

    {"name": "registry-a.example", "status": "active",        # active, suspended, withdrawn
     "allocators": ["VLT1"], "url": "https://registry-a.example",
     "origin": "registry-a.example/log", "log_vkey": "registry-a.example/log+…",
     "receipt_keys": [{"kid": "…", "public_key": "<base64>"}],
     "request_key": "<base64 Ed25519: its RFC 9421 request signatures>",
     "witness_vkey": "registry-a.example/witness+…", "witness_url": "https://…/witness"}

``quorum`` is the number of member cosignatures a client requires on each checkpoint.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from directory.transparency import cosignature, note

HEADER = "vault-federation/v1"
_ALLOCATOR = re.compile(r"[A-Z][A-Z0-9]{3}")
_COUNTRY = re.compile(r"[A-Z]{2}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:-]{0,199}")


class FederationError(ValueError):
    """A federation document that is malformed or not signed by a pinned federation key."""


class MemberStatus(StrEnum):
    ACTIVE = "active"  # answers lookups and plans for its allocators, witnesses its peers
    SUSPENDED = "suspended"  # its numbers stay known; it is not asked (registry_unavailable)
    WITHDRAWN = "withdrawn"  # no longer a member: its allocators are unknown


@dataclass(frozen=True, slots=True)
class Member:
    """One member registry, as the federation document lists it."""

    name: str
    status: MemberStatus
    allocators: tuple[str, ...]
    url: str
    origin: str
    log_vkey: str
    receipt_keys: tuple[dict[str, str], ...]
    request_key: bytes
    witness_vkey: str | None = None
    witness_url: str | None = None

    @property
    def is_member(self) -> bool:
        return self.status != MemberStatus.WITHDRAWN

    @property
    def log_keys(self) -> dict[str, list[bytes]]:
        """Its checkpoint verifier, as ``note.verify`` takes keys."""
        name, public = cosignature.parse_vkey(self.log_vkey, note.ALG_ED25519)
        return {name: [public]}

    def pinned_keys(self, country: str) -> dict[str, Any]:
        """Its keys in the shape of its ``/.well-known/vault-registry`` (what the client pins)."""
        name, public = cosignature.parse_vkey(self.log_vkey, note.ALG_ED25519)
        return {
            "origin": self.origin,
            "country": country,
            "allocators": list(self.allocators),
            "log_keys": [{"name": name, "public_key": base64.b64encode(public).decode()}],
            "receipt_keys": [dict(key) for key in self.receipt_keys],
        }


@dataclass(frozen=True, slots=True)
class Document:
    """A verified federation document."""

    federation: str
    serial: int
    country: str
    quorum: int
    members: tuple[Member, ...]
    data: dict[str, Any] = field(compare=False)
    signed: str = field(compare=False, default="")

    def member(self, name: str) -> Member | None:
        return next((m for m in self.members if m.name == name), None)

    def home_of(self, allocator: str) -> Member | None:
        """The member registry whose allocator code this is (withdrawn members hold none)."""
        return next((m for m in self.members if m.is_member and allocator in m.allocators), None)

    def allocators(self) -> frozenset[str]:
        """Every allocator code of a (not withdrawn) member: the numbers the federation knows."""
        return frozenset(code for m in self.members if m.is_member for code in m.allocators)


def _text(value: Any, what: str, pattern: re.Pattern[str] | None = None) -> str:
    if not isinstance(value, str) or not value or (pattern and not pattern.fullmatch(value)):
        raise FederationError(f"{what} is missing or malformed")
    return value


def _member(data: Any) -> Member:
    if not isinstance(data, dict):
        raise FederationError("a member is a JSON object")
    name = _text(data.get("name"), "a member's name", _NAME)
    try:
        status = MemberStatus(data.get("status"))
    except ValueError as exc:
        raise FederationError(f"member {name}: status is active, suspended or withdrawn") from exc
    allocators = data.get("allocators")
    if not isinstance(allocators, list) or not allocators:
        raise FederationError(f"member {name}: allocators must list its allocator codes")
    for code in allocators:
        _text(code, f"member {name}: allocator code", _ALLOCATOR)
    url = _text(data.get("url"), f"member {name}: url").rstrip("/")
    if not url.startswith(("https://", "http://")):
        raise FederationError(f"member {name}: url must be http(s)")
    log_vkey = _text(data.get("log_vkey"), f"member {name}: log_vkey")
    try:
        cosignature.parse_vkey(log_vkey, note.ALG_ED25519)
        witness_vkey = data.get("witness_vkey")
        if witness_vkey is not None:
            cosignature.parse_vkey(witness_vkey)
    except cosignature.CosignatureError as exc:
        raise FederationError(f"member {name}: {exc}") from exc
    receipt_keys = data.get("receipt_keys")
    if not isinstance(receipt_keys, list) or not all(
        isinstance(k, dict) and isinstance(k.get("kid"), str) and _b64key(k.get("public_key"))
        for k in receipt_keys
    ):
        raise FederationError(f"member {name}: receipt_keys lists {{kid, public_key}}")
    request_key = _b64key(data.get("request_key"))
    if request_key is None:
        raise FederationError(f"member {name}: request_key is a base64 Ed25519 public key")
    return Member(
        name=name,
        status=status,
        allocators=tuple(allocators),
        url=url,
        origin=_text(data.get("origin"), f"member {name}: origin"),
        log_vkey=log_vkey,
        receipt_keys=tuple(
            {"kid": k["kid"], "public_key": k["public_key"], **_window(k)} for k in receipt_keys
        ),
        request_key=request_key,
        witness_vkey=witness_vkey,
        witness_url=data.get("witness_url") or None,
    )


def _window(key: dict[str, Any]) -> dict[str, str]:
    return {k: key[k] for k in ("valid_from", "valid_until") if isinstance(key.get(k), str)}


def _b64key(value: Any) -> bytes | None:
    try:
        raw = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
    except binascii.Error:
        return None
    return raw if len(raw) == 32 else None


def parse(data: Any, signed: str = "") -> Document:
    """Check a document's shape (not its signature): FederationError when malformed."""
    if not isinstance(data, dict):
        raise FederationError("the federation document is a JSON object")
    serial = data.get("serial")
    if not isinstance(serial, int) or isinstance(serial, bool) or serial < 1:
        raise FederationError("serial must be a positive integer")
    quorum = data.get("quorum", 0)
    if not isinstance(quorum, int) or isinstance(quorum, bool) or quorum < 0:
        raise FederationError("quorum must be a non-negative integer")
    members_data = data.get("members")
    if not isinstance(members_data, list) or not members_data:
        raise FederationError("members must list the member registries")
    members = tuple(_member(m) for m in members_data)
    names = [m.name for m in members]
    if len(set(names)) != len(names):
        raise FederationError("two members have the same name")
    codes = [code for m in members if m.is_member for code in m.allocators]
    if len(set(codes)) != len(codes):
        raise FederationError("an allocator code belongs to two members")
    return Document(
        federation=_text(data.get("federation"), "federation (its name)"),
        serial=serial,
        country=_text(data.get("country"), "country", _COUNTRY),
        quorum=quorum,
        members=members,
        data=data,
        signed=signed,
    )


def sign(data: dict[str, Any], name: str, private_key: Ed25519PrivateKey) -> str:
    """The signed note of a document (checked first: a malformed one is never signed)."""
    parse(data)
    text = f"{HEADER}\n{rfc8785.dumps(data).decode()}\n"
    try:
        return note.sign(text, name, private_key)
    except note.NoteError as exc:
        raise FederationError(str(exc)) from exc


def add_signature(signed: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """Add one more federation key's signature (a rotation: old and new keys both sign)."""
    text = signed.rpartition("\n\n")[0] + "\n"
    extra = note.sign(text, name, private_key).rpartition("\n\n")[2]
    return signed + extra


def pinned(vkeys: list[str]) -> dict[str, list[bytes]]:
    """The federation keys pinned (note verifier keys), as ``note.verify`` takes them."""
    keys: dict[str, list[bytes]] = {}
    for vkey in vkeys:
        try:
            name, public = cosignature.parse_vkey(vkey, note.ALG_ED25519)
        except cosignature.CosignatureError as exc:
            raise FederationError(f"a pinned federation key is malformed: {exc}") from exc
        keys.setdefault(name, []).append(public)
    return keys


def verify(signed: str, keys: dict[str, list[bytes]]) -> Document:
    """A document signed by a pinned federation key; FederationError otherwise."""
    if not keys:
        raise FederationError("no federation key is pinned")
    try:
        text, _name = note.verify(signed, keys)
    except note.NoteError as exc:
        raise FederationError(f"the document's signature: {exc}") from exc
    header, sep, body = text.partition("\n")
    if header != HEADER or not sep or body.count("\n") != 1:
        raise FederationError(f"not a {HEADER} document")
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise FederationError("the document is not JSON") from exc
    if rfc8785.dumps(data).decode() + "\n" != body:
        raise FederationError("the document is not in its canonical (RFC 8785) form")
    return parse(data, signed)


def check_newer(new: Document, current: Document | None) -> None:
    """A new document replaces the current one only with a higher serial (never a rollback)."""
    if current is not None and new.serial <= current.serial:
        raise FederationError(
            f"serial {new.serial} is not above the installed document's {current.serial}"
        )
    if current is not None and new.federation != current.federation:
        raise FederationError("the document is another federation's")
