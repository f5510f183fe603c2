"""The records the state map commits to, exactly as log entries carry them (pure: no Django).

Every log entry that changes a vault or a provider carries, in its ``records`` member, the
complete new record of each: what an issuer acts on. Replaying the log in order and keeping the
last record per key gives the state; the state map commits to SHA-256 of each record's RFC 8785
bytes under the key ``vault:<number>`` or ``provider:<id>``. The answer a lookup gives is derived
from the records by ``lookup_fields``, on the registry and again in the verifying client.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

import orjson
import rfc8785

VAULT = "vault"
PROVIDER = "provider"
FLAGS = (
    "client_hold",
    "server_hold",
    "client_transfer_prohibited",
    "registry_lock",
    "pending_transfer",
)

Record = dict[str, Any]


class RecordError(ValueError):
    """A record is not of a known shape."""


def vault_key(number: str) -> str:
    return f"{VAULT}:{number}"


def provider_key(provider_id: str) -> str:
    return f"{PROVIDER}:{provider_id}"


def key_of(record: Record) -> str:
    """The state-map key of a record."""
    kind = record.get("type")
    if kind == VAULT and isinstance(record.get("number"), str):
        return vault_key(record["number"])
    if kind == PROVIDER and isinstance(record.get("id"), str):
        return provider_key(record["id"])
    raise RecordError(f"not a record: type {kind!r}")


_SAFE_INT = 2**53  # integers below this print the same in ECMAScript (RFC 8785) and orjson


def _plain(value: Any) -> bool:
    """Only objects with string names, arrays, strings, booleans, nulls and safe integers."""
    if isinstance(value, str) or value is None or isinstance(value, bool):
        return True
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(item) for item in value)
    return type(value) is int and -_SAFE_INT < value < _SAFE_INT


def record_bytes(record: Record) -> bytes:
    """The RFC 8785 (JCS) canonical bytes of a record: what the map value hashes.

    The common case takes a short cut that gives the same bytes ten times faster than the
    ``rfc8785`` package: for values made only of objects, arrays, ASCII strings needing no
    escape, booleans, nulls and integers below 2**53, RFC 8785 is the members sorted by name
    (code units and bytes sort alike in ASCII) with no spaces, which is what orjson writes with
    OPT_SORT_KEYS. Anything else — a non-ASCII or escaped character, a float — goes through
    ``rfc8785``. The short cut is checked against ``rfc8785`` in the tests.
    """
    if _plain(record):
        # Copied: orjson's own bytes object keeps its whole write buffer (about 3 KB).
        data = bytes(memoryview(orjson.dumps(record, option=orjson.OPT_SORT_KEYS)))
        if data.isascii() and b"\\" not in data:
            return data
    return rfc8785.dumps(record)


def value_of(record: Record) -> bytes:
    """The state-map value of a record: SHA-256 of its canonical bytes."""
    return hashlib.sha256(record_bytes(record)).digest()


def entry_records(entry: dict[str, Any]) -> list[Record]:
    """The records an entry carries (none for entries written before records existed)."""
    records = entry.get("records", [])
    if not isinstance(records, list):
        raise RecordError("the entry's records member is not a list")
    for record in records:
        if not isinstance(record, dict):
            raise RecordError("a record is not an object")
        key_of(record)
    return records


def replay(entries: Iterable[dict[str, Any]]) -> dict[str, Record]:
    """The state after these entries, in log order: key → its last record."""
    state: dict[str, Record] = {}
    for entry in entries:
        for record in entry_records(entry):
            state[key_of(record)] = record
    return state


# --- What a lookup answers, derived from the records ------------------------------------------


class Reason(StrEnum):
    """Why a vault cannot be delivered to; part of the public API (lookups and plans)."""

    CLOSED = "closed"
    HOLD = "hold"
    PROVIDER_SUSPENDED = "provider_suspended"
    PROVIDER_WITHDRAWN = "provider_withdrawn"
    NO_ENDPOINT = "no_endpoint"
    # Endpoints in force, but none accepting the document type of the purpose asked.
    NO_ENDPOINT_FOR_PURPOSE = "no_endpoint_for_purpose"
    NO_VALID_CERTIFICATE = "no_valid_certificate"
    # Only in routing plans: a single lookup answers 404 and 400 instead.
    UNKNOWN = "unknown"
    INVALID = "invalid"  # written "invalid:<code of the number parser>"


REASON_CLOSED = str(Reason.CLOSED)
REASON_HOLD = str(Reason.HOLD)
REASON_PROVIDER_SUSPENDED = str(Reason.PROVIDER_SUSPENDED)
REASON_PROVIDER_WITHDRAWN = str(Reason.PROVIDER_WITHDRAWN)
REASON_NO_ENDPOINT = str(Reason.NO_ENDPOINT)
REASON_NO_ENDPOINT_FOR_PURPOSE = str(Reason.NO_ENDPOINT_FOR_PURPOSE)
REASON_NO_VALID_CERTIFICATE = str(Reason.NO_VALID_CERTIFICATE)
ENDPOINT_FIELDS = ("id", "transport_profile", "url", "document_types", "activates_at", "expires_at")
CERTIFICATE_FIELDS = ("id", "fingerprint_sha256", "key_type", "not_before", "not_after")


def accepts(endpoint: Record, purpose: str | None) -> bool:
    """Whether an endpoint takes documents of ``purpose`` (a document type: the purposes are
    the registry's document types). No purpose asked, or an endpoint that declares no document
    types (no restriction), accepts; otherwise the type must be among those it declares."""
    if not purpose:
        return True
    declared = endpoint.get("document_types") or []
    return not declared or purpose in declared


def endpoints_in_force(provider: Record, at: str, purpose: str | None = None) -> list[Record]:
    """The provider's endpoints active at ``at`` (RFC 3339 UTC strings compare as text) and,
    when a purpose is asked, accepting its document type."""
    return [
        endpoint
        for endpoint in provider.get("endpoints", [])
        if endpoint["activates_at"] <= at
        and (endpoint.get("expires_at") is None or endpoint["expires_at"] > at)
        and accepts(endpoint, purpose)
    ]


def certificates_in_force(provider: Record, at: str, use: str = "encryption") -> list[Record]:
    """The provider's certificates of ``use`` valid at ``at``, soonest to expire first."""
    found = [
        certificate
        for certificate in provider.get("certificates", [])
        if certificate["use"] == use and certificate["not_before"] <= at < certificate["not_after"]
    ]
    return sorted(found, key=lambda c: (c["not_after"], c["id"]))


def flags_of(vault: Record) -> list[str]:
    return [flag for flag in FLAGS if vault.get(flag)]


def reasons_of(vault: Record, provider: Record, at: str, purpose: str | None = None) -> list[str]:
    """Every reason the vault cannot be delivered to at ``at`` (for ``purpose``, when one is
    asked), most decisive first."""
    reasons = []
    if vault["status"] == "closed":
        reasons.append(REASON_CLOSED)
    if vault.get("client_hold") or vault.get("server_hold"):
        reasons.append(REASON_HOLD)
    if provider["status"] != "active":
        reasons.append(
            REASON_PROVIDER_WITHDRAWN
            if provider["status"] == "withdrawn"
            else REASON_PROVIDER_SUSPENDED
        )
    if not endpoints_in_force(provider, at):
        reasons.append(REASON_NO_ENDPOINT)
    elif purpose and not endpoints_in_force(provider, at, purpose):
        reasons.append(REASON_NO_ENDPOINT_FOR_PURPOSE)
    if not certificates_in_force(provider, at):
        reasons.append(REASON_NO_VALID_CERTIFICATE)
    return reasons


def provider_identity(provider: Record) -> dict[str, Any]:
    return {
        "id": provider["id"],
        "legal_name": provider["legal_name"],
        "legal_id": provider["legal_id"],
        "status": provider["status"],
    }


def lookup_fields(
    vault: Record, provider: Record, at: str, purpose: str | None = None
) -> dict[str, Any]:
    """Every field of a found lookup answer an issuer acts on, from the two records alone
    (and the purpose asked, which keeps the endpoints accepting its document type).

    The registry builds its answer with this function and the client recomputes it from the
    proven records: a field that is not here is not proven (the README lists those).
    """
    if provider["id"] != vault["provider"]:
        raise RecordError("the provider record is not the vault's provider")
    reasons = reasons_of(vault, provider, at, purpose)
    previous = vault.get("previous_provider")
    return {
        "number": vault["number"],
        "status": vault["status"],
        "flags": flags_of(vault),
        "deliverable": not reasons,
        "reasons": reasons,
        "provider": provider_identity(provider),
        "endpoints": [
            {name: e.get(name) for name in ENDPOINT_FIELDS}
            for e in endpoints_in_force(provider, at, purpose)
        ],
        "encryption_certificates": [
            {name: c[name] for name in CERTIFICATE_FIELDS}
            for c in certificates_in_force(provider, at)
        ],
        "previous_provider": previous if previous and at < previous["until"] else None,
    }


def route_fields(provider: Record, at: str, purpose: str | None = None) -> dict[str, Any]:
    """A routing plan group's proven part: the provider's identity and routes at ``at`` (the
    endpoints accepting the purpose's document type, when the plan names one)."""
    return {
        "provider": provider_identity(provider),
        "endpoints": [
            {name: e.get(name) for name in ENDPOINT_FIELDS}
            for e in endpoints_in_force(provider, at, purpose)
        ],
        "encryption_certificates": [
            {name: c[name] for name in CERTIFICATE_FIELDS}
            for c in certificates_in_force(provider, at)
        ],
    }


def placement(
    vault: Record | None, provider: Record | None, at: str, purpose: str | None = None
) -> str | None:
    """Where a routing plan puts a number: None (deliverable: in its provider's group) or the
    reason it is unroutable, the most decisive first, as ``reasons_of`` orders them (for the
    plan's purpose: a provider with no endpoint for it is ``no_endpoint_for_purpose``)."""
    if vault is None:
        return str(Reason.UNKNOWN)
    if provider is None:  # the log never named the vault's provider: nothing to deliver to
        return "closed" if vault["status"] == "closed" else str(Reason.PROVIDER_SUSPENDED)
    reasons = reasons_of(vault, provider, at, purpose)
    return reasons[0] if reasons else None
