"""The client in a federation: pin the federation's key, learn each registry's keys from the
signed federation document (``/.well-known/vault-federation``), verify each answer with the keys
of the registry that gave it (a number's home registry, whichever registry forwarded it)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

from directory.client import http
from directory.client.errors import BadCheckpoint, PlanMismatch, RefusedNumber, Tampered
from directory.client.plans import StateFetcher, VerifiedPlan, verify_plan
from directory.client.verify import PinnedKeys, Trust, verify_receipt
from directory.transparency import federation as fed
from directory.transparency.cosignature import WitnessPolicy
from registry import numbers
from registry.numbers import compact


class FederationRefused(BadCheckpoint):
    """The federation document served does not verify against the pinned federation key."""

    label = "REFUSED (federation document)"


def fetch_document(registry: http.Registry, vkeys: list[str]) -> fed.Document:
    """The federation document the registry serves, verified against the pinned keys."""
    text = registry.federation()
    try:
        return fed.verify(text, fed.pinned(vkeys))
    except fed.FederationError as exc:
        raise FederationRefused(f"the federation document is refused: {exc}") from exc


def home_keys(document: fed.Document, number: str) -> tuple[fed.Member, PinnedKeys]:
    """The home registry of ``number`` and its keys, as the federation document lists them."""
    allocator = compact(number)[4:8]
    member = document.home_of(allocator)
    if member is None:
        raise RefusedNumber(f"unknown_allocator: no member of the federation allocates {allocator}")
    keys = PinnedKeys.from_document(member.pinned_keys(document.country))
    keys.allocators = document.allocators()
    return member, keys


def witness_policy(document: fed.Document, home: fed.Member) -> WitnessPolicy | None:
    """Mutual witnessing: the document's quorum among the other active members' witnesses
    (None when the federation requires no cosignature)."""
    if document.quorum <= 0:
        return None
    vkeys = [
        m.witness_vkey
        for m in document.members
        if m is not home and m.status == fed.MemberStatus.ACTIVE and m.witness_vkey
    ]
    return WitnessPolicy.from_vkeys(vkeys, document.quorum)


def member_keys(document: fed.Document, member: fed.Member) -> PinnedKeys:
    keys = PinnedKeys.from_document(member.pinned_keys(document.country))
    keys.allocators = document.allocators()
    return keys


@dataclass
class VerifiedFederatedPlan:
    """A federated plan whose every answered part is verified against its registry's keys."""

    parts: dict[str, VerifiedPlan]  # registry name → its verified part
    unavailable: dict[str, list[str]]  # registry name → the numbers it did not answer
    numbers: int


def _asked_items(request: bytes) -> list[str]:
    text = request.decode("utf-8-sig")
    if text.lstrip().startswith("["):
        return json.loads(text)
    items = [line.strip().strip(",").strip('"') for line in text.split("\n")]
    return [item for item in items if item]


STREAMED = b'{"type":"plan"'


def is_federated(answer: bytes) -> bool:
    """A plan answered by several registries (JSON or NDJSON)?"""
    head = answer.split(b"\n", 1)[0] if answer.startswith(STREAMED) else answer
    return bool(json.loads(head).get("federated"))


def read_federated(answer: bytes, receipt: str | None) -> tuple[dict, bytes, str | None]:
    """A federated plan as one document, the bytes its receipt signs, and that receipt.

    JSON: as it came, signed whole by the receipt header. NDJSON: rebuilt from its lines: each
    part's answer is its registry's lines with the ``"registry":"<name>",`` put first taken
    out again (byte for byte what that registry signed), and the receipt is the ``end``
    line's, over every byte before that line (a stream cut short has no end line: refused).
    """
    if not answer.startswith(STREAMED):
        return json.loads(answer), answer, receipt
    cut = answer.rstrip(b"\n").rfind(b"\n")
    signed, last = answer[: cut + 1], answer[cut + 1 :]
    end = json.loads(last) if cut > 0 else {}
    if end.get("type") != "end":
        raise PlanMismatch("the streamed plan has no end line: it was cut short")
    lines = signed.rstrip(b"\n").split(b"\n")
    plan: dict = {**json.loads(lines[0]), "parts": [], "unavailable": [], "summary": end["summary"]}
    answers: dict[str, list[bytes]] = {}
    part: dict | None = None
    for line in lines[1:]:
        if line.startswith(b'{"registry":'):
            prefix = b'{"registry":"' + (part or {}).get("registry", "").encode() + b'",'
            if part is None or "error" in part or not line.startswith(prefix):
                raise PlanMismatch("a registry's line outside that registry's part")
            answers[part["registry"]].append(b"{" + line[len(prefix) :] + b"\n")
            continue
        item = json.loads(line)
        kind = item.pop("type", None)
        if kind == "part":
            part = item
            if part["registry"] in answers:
                raise PlanMismatch(f"two parts of {part['registry']}")
            answers[part["registry"]] = []
            plan["parts"].append(part)
        elif kind == "unavailable":
            plan["unavailable"].append(item)
        else:
            raise PlanMismatch(f"an unexpected line in the streamed plan: {kind!r}")
    for part in plan["parts"]:
        if "error" not in part:
            part["answer"] = b"".join(answers[part["registry"]]).decode()
    return plan, signed, end.get("receipt")


def verify_federated_plan(
    receipt: str | None,
    document: fed.Document,
    asked: fed.Member,
    trust: Trust,
    request: bytes,
    answer: bytes,
    fetch_state: Callable[[fed.Member], StateFetcher],
    *,
    purpose: str | None = None,
    now: float | None = None,
) -> VerifiedFederatedPlan:
    """Verify a plan split across registries: the registry asked signed the merged answer; the
    numbers are split exactly by home registry (malformed ones stay with the registry asked);
    and each part that came back is a complete, verified plan of its registry (``verify_plan``
    with that registry's keys from the federation document and its state proofs)."""
    plan, signed, receipt = read_federated(answer, receipt)
    payload = verify_receipt(receipt or "", member_keys(document, asked), now=now)
    if payload.get("answer", {}).get("answer_sha256") != hashlib.sha256(signed).hexdigest():
        raise Tampered("the merged plan differs from what its receipt signed")
    if payload.get("asked", {}).get("request_sha256") != hashlib.sha256(request).hexdigest():
        raise Tampered("the receipt signs another request than the one sent")
    if payload.get("asked", {}).get("purpose") != (purpose or None):
        raise Tampered("the receipt answers another purpose than the one asked")
    parts = plan.get("parts") or []
    sent: dict[str, str] = {}
    for part in parts:
        for raw in json.loads(part["request"]):
            if raw in sent:
                raise PlanMismatch(f"{raw!r} was sent to two registries")
            sent[raw] = part["registry"]
    items = _asked_items(request)
    if set(sent) != set(items):
        raise PlanMismatch("the parts do not cover exactly the numbers asked")
    allocators = document.allocators()
    for raw, registry in sent.items():
        try:
            home = document.home_of(numbers.parse(raw, allocators, document.country).allocator)
        except numbers.InvalidNumber:
            home = asked
        if home is None or home.name != registry:
            raise PlanMismatch(f"{raw!r} was sent to {registry}, not its home registry")
    verified: dict[str, VerifiedPlan] = {}
    unavailable: dict[str, list[str]] = {}
    for part in parts:
        member = document.member(part["registry"])
        if member is None:
            raise PlanMismatch(f"part of {part['registry']}, not a member of the federation")
        if "error" in part:
            unavailable[member.name] = json.loads(part["request"])
            continue
        part_trust = Trust(member_keys(document, member), trust.witnesses, trust.max_age)
        verified[member.name] = verify_plan(
            part.get("receipt"),
            part_trust,
            part["request"].encode(),
            part["answer"].encode(),
            fetch_state(member),
            purpose=purpose,
            now=now,
        )
    return VerifiedFederatedPlan(verified, unavailable, len(items))
