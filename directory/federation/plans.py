"""Federated routing plans: split by allocator, each home registry resolves its share, merged.

The numbers of this registry are resolved as a plan of its own (``directory.plans``); each
peer's share goes to that peer in one signed plan call, all peers in parallel (threads), within
``VAULT_FEDERATION_PLAN_TIMEOUT``. The merged answer has one part per registry, each with the
exact request bytes sent, the exact answer bytes received and that registry's receipt (whose
hashes bind those bytes, whose checkpoint proves every placement), so the client verifies each
part against its own registry's keys from the federation document. A peer that is down, too
slow or answers an error costs only its numbers: its part says why, and its numbers are listed
``registry_unavailable:<registry>``.

Two encodings (README "Federation"):

- JSON: ``{"federated": true, "summary", "parts": [{"registry", "url", "count", "request",
  "answer", "receipt"} or {…, "error"}], "unavailable"}``, signed as a whole by the
  ``Vault-Registry-Receipt`` header;
- NDJSON (``Accept: application/x-ndjson``), streamed: a ``plan`` line naming the parts, then
  this registry's part at once, then each peer's as it arrives. A part is a ``part`` line
  (registry, url, count, request, receipt or error) followed by that registry's own NDJSON
  answer, line by line, each line with ``"registry":"<name>",`` put first (so every group says
  which registry answered, and removing those bytes gives back exactly the bytes the registry
  signed); then one ``unavailable`` line per number lost, and an ``end`` line with the summary
  and the receipt of everything before it (a streamed answer cannot be signed in a header).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

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
NDJSON = "application/x-ndjson"


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
    summary: dict = field(default_factory=dict)  # the registry's own summary of its share

    def as_dict(self) -> dict:
        part = {"registry": self.registry, "url": self.url, "count": self.count}
        part["request"] = self.request.decode()
        if self.error is not None:
            return part | {"error": self.error}
        return part | {"answer": (self.answer or b"").decode(), "receipt": self.receipt}

    def head(self) -> dict:
        """The NDJSON ``part`` line: the part without its answer (its lines follow)."""
        part = {"type": "part", **self.as_dict()}
        part.pop("answer", None)
        return part

    def lines(self) -> bytes:
        """The part streamed: its ``part`` line, then its registry's NDJSON answer with
        ``"registry":"<name>",`` put first on each line (bytes only, no re-encoding)."""
        head = orjson.dumps(self.head()) + b"\n"
        if not self.answer:
            return head
        prefix = b'{"registry":' + orjson.dumps(self.registry) + b","
        # A newline byte only ends a line: JSON escapes it inside strings.
        return head + prefix + self.answer[1:].replace(b"\n{", b"\n" + prefix)

    @property
    def lost(self) -> list[str]:
        return orjson.loads(self.request) if self.error is not None else []


def _failed(member: fed.Member, body: bytes, status: int, detail: str) -> Part:
    return Part(
        member.name,
        member.url,
        body,
        error={"code": UNAVAILABLE, "status": status, "detail": detail},
        count=len(orjson.loads(body)),
    )


def _ask(
    member: fed.Member, url: str, headers: dict[str, str], body: bytes, timeout: float
) -> Part:
    """One peer's share (in a pool thread: HTTP only, the request was signed before)."""
    part = Part(member.name, member.url, body, count=len(orjson.loads(body)))
    try:
        status, answer_headers, answer = forwarding.send(
            member, "POST", url, headers, body, timeout, kind="plan", numbers=part.count
        )
    except DomainError as exc:
        part.error = {"code": UNAVAILABLE, "status": exc.status, "detail": exc.detail}
        return part
    except Exception:  # whatever goes wrong with one peer costs only its numbers
        logger.exception("registry %s: its share of a plan failed", member.name)
        part.error = {"code": UNAVAILABLE, "status": 502, "detail": "the call failed"}
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
    try:  # NDJSON: its first line; JSON: the whole answer
        streamed = answer.startswith(b'{"type":"plan"')
        head = answer.split(b"\n", 1)[0] if streamed else answer
        part.summary = orjson.loads(head).get("summary") or {}
    except (orjson.JSONDecodeError, AttributeError):
        part.summary = {}  # the client refuses what does not parse; the record counts nothing
    return part


class FanOut:
    """Each peer's share sent now, all in parallel; the parts collected as they come back.

    The requests are signed here, in the request's thread (its database connection and key);
    the pool threads only talk HTTP. A peer not done by the plan timeout is given up: its part
    says so and its numbers are lost, whatever it answers later.
    """

    def __init__(
        self,
        shares: dict[str, list[str]],
        document: fed.Document,
        issuer: str,
        purpose: str,
        *,
        ndjson: bool = False,
    ):
        self.timeout = float(settings.VAULT_FEDERATION_PLAN_TIMEOUT)
        self.deadline = time.monotonic() + self.timeout + 1
        self.pool = ThreadPoolExecutor(max_workers=max(len(shares), 1), thread_name_prefix="plan")
        self.futures: dict[Future, tuple[fed.Member, bytes]] = {}
        self.failed: list[Part] = []
        path = PLAN_PATH + (f"?purpose={purpose}" if purpose else "")
        media = NDJSON if ndjson else "application/json"
        headers = {"Content-Type": "application/json", "Accept": media}
        for name, share in shares.items():
            member = document.member(name)
            body = orjson.dumps(share)
            try:
                url, signed = forwarding.prepare(member, "POST", path, issuer, headers, body)
            except DomainError as exc:  # suspended: not asked
                self.failed.append(_failed(member, body, exc.status, exc.detail))
                continue
            future = self.pool.submit(_ask, member, url, signed, body, self.timeout)
            self.futures[future] = (member, body)

    @property
    def registries(self) -> list[tuple[str, str, int]]:
        """(name, url, count) of every peer asked or given up."""
        asked = [(m.name, m.url, len(orjson.loads(b))) for m, b in self.futures.values()]
        return sorted(asked + [(p.registry, p.url, p.count) for p in self.failed])

    def as_completed(self) -> Iterator[Part]:
        """Each peer's part as soon as it is complete; late ones as unavailable at the end."""
        yield from self.failed
        pending = set(self.futures)
        try:
            while pending:
                done, pending = wait(
                    pending,
                    timeout=max(self.deadline - time.monotonic(), 0),
                    return_when=FIRST_COMPLETED,
                )
                if not done:
                    break
                for future in sorted(done, key=lambda f: self.futures[f][0].name):
                    yield future.result()
            for future in sorted(pending, key=lambda f: self.futures[f][0].name):
                member, body = self.futures[future]
                logger.warning(
                    "registry %s: its share of a plan took more than %s s",
                    member.name,
                    self.timeout,
                )
                yield _failed(member, body, 504, "no answer in time")
        finally:
            self.pool.shutdown(wait=False, cancel_futures=True)

    def results(self) -> list[Part]:
        return sorted(self.as_completed(), key=lambda part: part.registry)


def fan_out(
    shares: dict[str, list[str]], document: fed.Document, issuer: str, purpose: str
) -> list[Part]:
    """Each peer's share to that peer, in parallel, within the plan timeout; one part each."""
    return FanOut(shares, document, issuer, purpose).results()


def summary(parts: list[Part]) -> dict:
    """The merged plan's counts, from each registry's own summary of its part: what the
    issuer's record keeps (``RoutingPlan``) and the receipt signs."""
    reasons: Counter[str] = Counter()
    distinct = routable = providers = 0
    for part in parts:
        if part.error is not None:
            lost = part.lost
            distinct += len(set(lost))
            reasons[f"{UNAVAILABLE}:{part.registry}"] += len(set(lost))
            continue
        distinct += part.summary.get("distinct", 0)
        routable += part.summary.get("routable", 0)
        providers += part.summary.get("providers", 0)
        reasons.update(part.summary.get("unroutable_by_reason") or {})
    return {
        "asked": sum(part.count for part in parts),
        "distinct": distinct,
        "routable": routable,
        "unroutable": distinct - routable,
        "unroutable_by_reason": dict(sorted(reasons.items())),
        "providers": providers,
        "registries": len(parts),
        "registries_unavailable": sorted(part.registry for part in parts if part.error),
        "unavailable": sum(part.count for part in parts if part.error),
    }


def registries(parts: list[Part]) -> list[dict]:
    """Who answered what, as the plan's record keeps it: per registry its count, and the hash
    of the answer it gave (its receipt signs that hash) or why it gave none."""
    kept = []
    for part in sorted(parts, key=lambda p: p.registry):
        entry: dict = {"registry": part.registry, "count": part.count}
        if part.error is not None:
            entry["error"] = part.error["code"]
        else:
            entry["answer_sha256"] = hashlib.sha256(part.answer or b"").hexdigest()
        kept.append(entry)
    return kept


def unavailable_items(parts: list[Part]) -> list[dict]:
    return [
        {"number": number, "reason": f"{UNAVAILABLE}:{part.registry}"}
        for part in parts
        if part.error is not None
        for number in part.lost
    ]


def merged(header: dict, local: list[Part], peers: list[Part]) -> bytes:
    """The federated plan as one JSON document: a summary over all parts, the parts (this
    registry's first, when it had numbers to resolve), and the numbers lost."""
    parts = [*local, *peers]
    return orjson.dumps(
        {
            **header,
            "federated": True,
            "summary": summary(parts),
            "parts": [part.as_dict() for part in parts],
            "unavailable": unavailable_items(parts),
        }
    )


def stream(
    header: dict,
    me: fed.Member,
    local: list[Part],
    fan: FanOut,
    finish: Callable[[list[Part], str, dict], str],
) -> Iterator[bytes]:
    """The federated plan as NDJSON: the ``plan`` line and this registry's part at once, each
    peer's part as it arrives, the numbers lost, then the ``end`` line: the summary and the
    receipt ``finish(parts, answer_sha256, summary)`` gives for every byte before that line
    (it also records the plan)."""
    digest = hashlib.sha256()
    registries = [{"registry": p.registry, "url": p.url, "count": p.count} for p in local]
    registries += [{"registry": n, "url": u, "count": c} for n, u, c in fan.registries]
    first = orjson.dumps({"type": "plan", "federated": True, **header, "registry": me.name})
    chunk = first[:-1] + b',"parts":' + orjson.dumps(registries) + b"}\n"
    chunk += b"".join(part.lines() for part in local)
    digest.update(chunk)
    yield chunk
    parts = list(local)
    for part in fan.as_completed():
        parts.append(part)
        chunk = part.lines()
        digest.update(chunk)
        yield chunk
    lost = [orjson.dumps({"type": "unavailable", **item}) for item in unavailable_items(parts)]
    for start in range(0, len(lost), 1000):
        chunk = b"\n".join(lost[start : start + 1000]) + b"\n"
        digest.update(chunk)
        yield chunk
    totals = summary(parts)
    answer_sha256 = digest.hexdigest()
    receipt = finish(parts, answer_sha256, totals)
    end = {"type": "end", "summary": totals, "answer_sha256": answer_sha256, "receipt": receipt}
    yield orjson.dumps(end) + b"\n"
