"""Routing plans: a whole statement run resolved in one call, grouped by provider.

The numbers are read and checked in Python once each (fast path, see registry.numbers), resolved
with one set-based query (directory.selectors.resolve_groups, shared with the single lookup), and
answered as JSON or NDJSON built with orjson. The plan's record keeps counts and the SHA-256 of
the request and answer bytes, so an issuer can later prove what the registry answered.
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

from directory import checkpoints
from directory.api.rendering import dumps
from directory.models import RoutingPlan
from directory.selectors import Reason, resolve_groups
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

    def header(self) -> dict[str, Any]:
        return {"id": str(self.id), "created_at": timestamp(self.created_at)}

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


def build_plan(asked: list[str]) -> Plan:
    """Resolve every number asked; each appears exactly once in the answer."""
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
    unroutable: list[dict[str, str]] = [
        {"number": raw, "reason": reason} for raw, reason in invalid.items()
    ]
    by_reason: Counter[str] = Counter(item["reason"] for item in unroutable)
    valid = [n for n in counts if n not in invalid] if invalid else list(counts)
    groups: dict[str, dict[str, Any]] = {}
    resolved = resolve_groups(valid)
    for group in resolved.groups:
        if group.reasons:
            reason = str(group.reasons[0])
            by_reason[reason] += len(group.numbers)
            unroutable.extend({"number": n, "reason": reason} for n in group.numbers)
            continue
        provider = group.provider
        entry = groups.get(provider.id)
        if entry is None:
            entry = groups[provider.id] = {
                "provider": provider.identity(),
                "endpoints": provider.endpoints,
                "encryption_certificates": provider.certificates,
                "numbers": [],
            }
        entry["numbers"].extend(group.numbers)
    unroutable.extend({"number": n, "reason": str(Reason.UNKNOWN)} for n in resolved.unknown)
    if resolved.unknown:
        by_reason[Reason.UNKNOWN] = len(resolved.unknown)
    unroutable.sort(key=lambda item: (item["reason"], item["number"]))
    for entry in groups.values():
        entry["numbers"].sort()
        entry["count"] = len(entry["numbers"])
    routable = sum(entry["count"] for entry in groups.values())
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
    ordered = sorted(groups.values(), key=lambda entry: entry["provider"]["legal_name"])
    return Plan(uuid.uuid4(), timezone.now(), summary, ordered, unroutable, duplicates)


def routing_plan_record(
    *,
    plan: Plan,
    issuer: Issuer,
    token: ApiToken | None,
    purpose: str,
    request_body: bytes,
    answer: bytes,
) -> RoutingPlan:
    """Keep the plan's proof record: counts and hashes, never the numbers themselves.

    One INSERT, atomic on its own; the plan changes nothing else, so there is no transaction
    to share.
    """
    summary = plan.summary
    return RoutingPlan.objects.create(
        id=plan.id,
        issuer=issuer,
        token=token,
        created_at=plan.created_at,
        purpose=purpose,
        asked=summary["asked"],
        distinct=summary["distinct"],
        routable=summary["routable"],
        unroutable=summary["unroutable"],
        unroutable_by_reason=summary["unroutable_by_reason"],
        providers=summary["providers"],
        request_sha256=hashlib.sha256(request_body).hexdigest(),
        answer_sha256=hashlib.sha256(answer).hexdigest(),
        log_size=checkpoints.log_size(),
    )
