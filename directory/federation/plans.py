"""Federated routing plans: split by allocator, each home registry resolves its share, merged.

The numbers of this registry are resolved as a plan of its own (``directory.plans``); each
peer's share goes to that peer in one signed plan call, all peers in parallel (threads), within
``VAULT_FEDERATION_PLAN_TIMEOUT``. The merged answer has one part per registry, each with the
exact request bytes sent, the exact answer bytes received and that registry's receipt (whose
hashes bind those bytes, whose checkpoint proves every placement), so the client verifies each
part against its own registry's keys from the federation document. A peer that is down, too
slow or answers an error costs only its numbers: its part says why, and its numbers are listed
``registry_unavailable:<registry>``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass

import orjson
from django.conf import settings

from directory.federation import forwarding, members
from directory.transparency import federation as fed
from registry import numbers
from registry.errors import DomainError
from registry.federation import country, known_allocators

logger = logging.getLogger("directory.federation")

UNAVAILABLE = "registry_unavailable"
PLAN_PATH = "/api/v1/routing-plans"


def split(asked: list[str], document: fed.Document) -> tuple[list[str], dict[str, list[str]]]:
    """The numbers this registry resolves (its own, and every malformed one, which it refuses
    with the reason its parser gives) and each peer's share, as asked (member name → numbers)."""
    me = members.self_member(document)
    own = set(me.allocators) if me else set()
    allocators, ours = known_allocators(), country()
    local: list[str] = []
    peers: dict[str, list[str]] = defaultdict(list)
    for raw in asked:
        number = numbers.normalise_fast(raw, allocators, ours)
        allocator = number[4:8] if number else None
        if allocator is None or allocator in own:
            local.append(raw)
            continue
        home = document.home_of(allocator)
        if home is None:  # cannot happen: known allocators are the members'
            local.append(raw)
        else:
            peers[home.name].append(raw)
    return local, dict(peers)


@dataclass(slots=True)
class Part:
    """One registry's share of a plan: what was sent, what came back, or why nothing did."""

    registry: str
    url: str
    request: bytes
    answer: bytes | None = None
    receipt: str | None = None
    error: dict | None = None
    count: int = 0

    def as_dict(self) -> dict:
        part = {"registry": self.registry, "url": self.url, "count": self.count}
        part["request"] = self.request.decode()
        if self.error is not None:
            return part | {"error": self.error}
        return part | {"answer": (self.answer or b"").decode(), "receipt": self.receipt}


def _ask(member: fed.Member, body: bytes, issuer: str, purpose: str, timeout: float) -> Part:
    part = Part(member.name, member.url, body, count=len(orjson.loads(body)))
    try:
        return _asked(part, member, body, issuer, purpose, timeout)
    except Exception:  # whatever goes wrong with one peer costs only its numbers
        logger.exception("registry %s: its share of a plan failed", member.name)
        part.error = {"code": UNAVAILABLE, "status": 502, "detail": "the call failed"}
        return part


def _asked(
    part: Part, member: fed.Member, body: bytes, issuer: str, purpose: str, timeout: float
) -> Part:
    path = PLAN_PATH + (f"?purpose={purpose}" if purpose else "")
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    try:
        status, answer_headers, answer = forwarding.call(
            member, "POST", path, issuer=issuer, headers=headers, body=body, timeout=timeout
        )
    except DomainError as exc:
        part.error = {"code": UNAVAILABLE, "status": exc.status, "detail": exc.detail}
        return part
    if status != 200:
        try:
            detail = orjson.loads(answer).get("detail", "")
        except (orjson.JSONDecodeError, AttributeError):
            detail = answer[:200].decode(errors="replace")
        part.error = {"code": UNAVAILABLE, "status": status, "detail": detail}
        return part
    lowered = {k.lower(): v for k, v in answer_headers.items()}
    part.answer, part.receipt = answer, lowered.get("vault-registry-receipt")
    return part


def fan_out(
    shares: dict[str, list[str]], document: fed.Document, issuer: str, purpose: str
) -> list[Part]:
    """Each peer's share to that peer, in parallel, within the plan timeout; one part each."""
    timeout = float(settings.VAULT_FEDERATION_PLAN_TIMEOUT)
    pool = ThreadPoolExecutor(max_workers=max(len(shares), 1), thread_name_prefix="plan-peer")
    futures = {}
    for name, share in shares.items():
        member = document.member(name)
        body = orjson.dumps(share)
        futures[pool.submit(_ask, member, body, issuer, purpose, timeout)] = (member, body)
    _done, late = wait(futures, timeout=timeout + 1)
    pool.shutdown(wait=False, cancel_futures=True)
    parts = []
    for future, (member, body) in futures.items():
        if future in late:
            logger.warning(
                "registry %s: its share of a plan took more than %s s", member.name, timeout
            )
            parts.append(
                Part(
                    member.name,
                    member.url,
                    body,
                    error={"code": UNAVAILABLE, "status": 504, "detail": "no answer in time"},
                    count=len(shares[member.name]),
                )
            )
        else:
            parts.append(future.result())
    return sorted(parts, key=lambda part: part.registry)


def merged(header: dict, local: Part, peers: list[Part]) -> bytes:
    """The federated plan: a summary over all parts, the parts, and the numbers lost."""
    parts = [local, *peers]
    lost = [
        {"number": number, "reason": f"{UNAVAILABLE}:{part.registry}"}
        for part in peers
        if part.error is not None
        for number in orjson.loads(part.request)
    ]
    summary = {
        "asked": sum(part.count for part in parts),
        "registries": len(parts),
        "registries_unavailable": sorted(part.registry for part in peers if part.error),
        "unavailable": len(lost),
    }
    return orjson.dumps(
        {
            **header,
            "federated": True,
            "summary": summary,
            "parts": [part.as_dict() for part in parts],
            "unavailable": lost,
        }
    )
