"""Routing plans: a whole statement run resolved in one call, grouped by provider.

The numbers are read and checked in Python once each (fast path, see registry.numbers), resolved
against the state map at the checkpoint served (the records a lookup is proven from, two
queries), and answered as JSON or NDJSON built with orjson; the answer names that checkpoint so
the client can verify every placement (``POST /api/v1/state/proofs``). The plan's record keeps
counts and the SHA-256 of the request and answer bytes, so an issuer can later prove what the
registry answered.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from django.utils import timezone

from directory import proven, state
from directory.api.rendering import dumps
from directory.models import Checkpoint, RoutingPlan
from directory.transparency import records as rec
from directory.transparency.records import Reason
from registry import numbers
from registry.errors import DomainError, ErrorCode, InvalidInput
from registry.federation import country, known_allocators
from registry.models import ApiToken, Issuer
from registry.services.common import timestamp

NDJSON = "application/x-ndjson"


def read_numbers(body: bytes, content_type: str, limit: int) -> list[str]:
    """The numbers of a request body: a JSON array of strings, or one number per line."""
    media = content_type.split(";")[0].strip().lower()
    if media == "application/json":
        try:
            items = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(ErrorCode.MALFORMED_JSON, f"The body is not JSON: {exc}.") from exc
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise InvalidInput(ErrorCode.BAD_REQUEST, "Send a JSON array of vault numbers.")
    elif media in {"text/plain", "text/csv"}:
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidInput(ErrorCode.BAD_REQUEST, "The body is not UTF-8 text.") from exc
        # One number per line; a CSV export may quote it or end the line with a comma. Lines
        # end at \n or \r\n only: str.splitlines() also splits at \x0b \x0c \x1c-\x1e \x85
        # \u2028 \u2029, which a single lookup drops as separators inside one number.
        lines = text.split("\n")
        items = [line.strip().strip(",").strip('"') for line in lines]
        items = [item for item in items if item]
    else:
        raise DomainError(
            ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            "Send application/json, text/plain or text/csv.",
            status=415,
        )
    if not items:
        raise InvalidInput(ErrorCode.BAD_REQUEST, "The plan asks for no vault number.")
    if len(items) > limit:
        raise DomainError(
            ErrorCode.TOO_MANY_NUMBERS,
            f"A plan holds at most {limit} numbers; this one has {len(items)}.",
            status=413,
            extra={"max_numbers": limit},
        )
    return items


@dataclass(slots=True)
class Plan:
    """A resolved plan: what is sent back, before encoding."""

    id: uuid.UUID
    created_at: datetime
    summary: dict[str, Any]
    groups: list[dict[str, Any]] = field(default_factory=list)
    unroutable: list[dict[str, str]] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    checkpoint: Checkpoint | None = None
    at: str = ""
    purpose: str = ""

    def header(self) -> dict[str, Any]:
        """The plan's identity, the purpose it was resolved for (endpoints filtered by its
        document type), and the signed state and time it was resolved against: the client
        verifies every placement against that checkpoint's map, for that purpose."""
        return {
            "id": str(self.id),
            "created_at": timestamp(self.created_at),
            "purpose": self.purpose or None,
            "at": self.at,
            "checkpoint": self.checkpoint.note if self.checkpoint else None,
        }

    def as_json(self) -> bytes:
        return dumps(
            {
                **self.header(),
                "summary": self.summary,
                "groups": self.groups,
                "unroutable": self.unroutable,
                "duplicates": self.duplicates,
            }
        )

    def as_ndjson(self) -> Iterator[bytes]:
        """One line for the plan, then one per group, per unroutable number, per duplicate."""
        yield dumps({"type": "plan", **self.header(), "summary": self.summary}) + b"\n"
        for group in self.groups:
            yield dumps({"type": "group", **group}) + b"\n"
        lines = []
        for item in self.unroutable:
            lines.append(dumps({"type": "unroutable", **item}))
        for item in self.duplicates:
            lines.append(dumps({"type": "duplicate", **item}))
        for start in range(0, len(lines), 1000):
            yield b"\n".join(lines[start : start + 1000]) + b"\n"


def resolve_plan(valid: list[str], checkpoint: Checkpoint, at: str, purpose: str = ""):
    """Place each valid, distinct number from the state map at ``checkpoint``
    (``records.placement``, as the client checks it), for ``purpose`` (a provider without an
    endpoint accepting its document type cannot be delivered to): the numbers per deliverable
    provider, the providers' records, and (number, reason) for the rest. Two queries for the
    records."""
    size = checkpoint.size
    found = state.records_at([rec.vault_key(n) for n in valid], size)
    vaults = {key[len(rec.VAULT) + 1 :]: orjson.loads(data) for key, data in found.items()}
    provider_ids = sorted({vault["provider"] for vault in vaults.values()})
    providers = {
        key[len(rec.PROVIDER) + 1 :]: orjson.loads(data)
        for key, data in state.records_at([rec.provider_key(p) for p in provider_ids], size).items()
    }
    # A provider's own reasons are the same for all its open, unheld vaults: decided once.
    open_vault = {"status": "active", "client_hold": False, "server_hold": False}
    by_provider = {
        pid: rec.placement(open_vault, providers.get(pid), at, purpose) for pid in provider_ids
    }
    groups: dict[str, list[str]] = {}
    unroutable: list[tuple[str, str]] = []
    for number in valid:
        vault = vaults.get(number)
        if vault is None:
            reason = str(Reason.UNKNOWN)
        elif vault["status"] == "closed":
            reason = rec.REASON_CLOSED
        elif vault["client_hold"] or vault["server_hold"]:
            reason = rec.REASON_HOLD
        else:
            reason = by_provider[vault["provider"]]
        if reason is None:
            groups.setdefault(vault["provider"], []).append(number)
        else:
            unroutable.append((number, reason))
    return groups, providers, unroutable


def build_plan(asked: list[str], checkpoint: Checkpoint | None = None, purpose: str = "") -> Plan:
    """Resolve every number asked against the state signed by ``checkpoint`` (the one served
    by default), for ``purpose`` when the issuer names one (only endpoints accepting its
    document type); each number appears exactly once in the answer."""
    checkpoint = checkpoint or proven.checkpoint_for(None)
    now = timezone.now()
    at = timestamp(now)
    allocators, ours = known_allocators(), country()
    counts: Counter[str] = Counter()
    invalid: dict[str, str] = {}
    for raw, times in Counter(asked).items():
        number = numbers.normalise_fast(raw, allocators, ours)
        if number is not None:
            counts[number] += times
            continue
        try:  # the slow parser says why; it agrees with the fast path (tested)
            numbers.parse(raw, allocators, ours)
        except numbers.InvalidNumber as exc:
            invalid[raw] = f"{Reason.INVALID}:{exc.code}"
        counts[raw] += times
    valid = [n for n in counts if n not in invalid] if invalid else list(counts)
    placed, providers, refused = resolve_plan(valid, checkpoint, at, purpose)
    unroutable = [{"number": raw, "reason": reason} for raw, reason in invalid.items()]
    unroutable += [{"number": number, "reason": reason} for number, reason in refused]
    unroutable.sort(key=lambda item: (item["reason"], item["number"]))
    by_reason = Counter(item["reason"] for item in unroutable)
    groups = [
        {
            **rec.route_fields(providers[pid], at, purpose),
            "numbers": sorted(members),
            "count": len(members),
        }
        for pid, members in placed.items()
    ]
    proven.attach_pems([c for group in groups for c in group["encryption_certificates"]])
    routable = sum(group["count"] for group in groups)
    duplicates = [{"number": n, "count": c} for n, c in counts.items() if c > 1]
    summary = {
        "asked": len(asked),
        "distinct": len(counts),
        "duplicated": len(duplicates),
        "routable": routable,
        "unroutable": len(counts) - routable,
        "unroutable_by_reason": dict(sorted(by_reason.items())),
        "providers": len(groups),
    }
    groups.sort(key=lambda group: (group["provider"]["legal_name"], group["provider"]["id"]))
    return Plan(
        uuid.uuid4(),
        now,
        summary,
        groups,
        unroutable,
        duplicates,
        checkpoint=checkpoint,
        at=at,
        purpose=purpose,
    )


def routing_plan_record(
    *,
    plan: Plan,
    issuer: Issuer,
    token: ApiToken | None,
    purpose: str,
    request_body: bytes,
    answer: bytes,
) -> RoutingPlan:
    """Keep the plan's proof record: counts and hashes, never the numbers themselves."""
    return plan_record(
        plan_id=plan.id,
        created_at=plan.created_at,
        issuer=issuer,
        token=token,
        purpose=purpose,
        summary=plan.summary,
        request_sha256=hashlib.sha256(request_body).hexdigest(),
        answer_sha256=hashlib.sha256(answer).hexdigest(),
        log_size=plan.checkpoint.size if plan.checkpoint else 0,
    )


def plan_record(
    *,
    plan_id: uuid.UUID,
    created_at: datetime,
    issuer: Issuer,
    token: ApiToken | None,
    purpose: str,
    summary: dict[str, Any],
    request_sha256: str,
    answer_sha256: str,
    log_size: int,
    registries: list[dict[str, Any]] | None = None,
) -> RoutingPlan:
    """The record of a plan answered, local or federated (``registries``: who answered what).

    One INSERT, atomic on its own; the plan changes nothing else, so there is no transaction
    to share.
    """
    return RoutingPlan.objects.create(
        id=plan_id,
        issuer=issuer,
        token=token,
        created_at=created_at,
        purpose=purpose,
        asked=summary["asked"],
        distinct=summary["distinct"],
        routable=summary["routable"],
        unroutable=summary["unroutable"],
        unroutable_by_reason=summary["unroutable_by_reason"],
        providers=summary["providers"],
        request_sha256=request_sha256,
        answer_sha256=answer_sha256,
        log_size=log_size,
        registries=registries or [],
    )
