"""Routing plans from the client: send a statement run's numbers, get the plan, verify it.

The upload and the answer are streamed with progress callbacks (a 100,000-number plan is a few
megabytes each way). The receipt (the ``Vault-Registry-Receipt`` header) binds the SHA-256 of
the exact bytes sent and received; ``verify_plan`` checks both against it, then every number's
placement against the state map of the plan's checkpoint: one batched proof of all the records
the plan depends on (``POST /api/v1/state/proofs``).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from directory.client.errors import (
    CertificateMismatch,
    ClientError,
    PlanMismatch,
    RegistryError,
    Tampered,
)
from directory.client.verify import (
    LEEWAY,
    Trust,
    check_trusted,
    epoch,
    pem_fingerprint,
    same_checkpoint,
    verify_receipt,
    verify_records,
    without_pem,
)
from directory.transparency import records as rec
from registry import numbers

Progress = Callable[[int, int], None]
Poster = Callable[[str, dict[str, str], bytes, Progress, Progress], tuple[int, dict, bytes]]
"""``poster(url, headers, body, sent, received) -> (status, headers, body)``; tests inject one."""

CHUNK = 64 * 1024


def http_poster(timeout: float = 300.0) -> Poster:
    """POST with the standard library, reporting bytes sent and received as they go."""

    def post(url, headers, body, sent, received):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in {"http", "https"}:
            raise RegistryError(0, f"not an HTTP URL: {url}")
        connection_class = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        connection = connection_class(parts.netloc, timeout=timeout)
        try:
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            connection.putrequest("POST", path)
            for name, value in {**headers, "Content-Length": str(len(body))}.items():
                connection.putheader(name, value)
            connection.endheaders()
            for start in range(0, len(body), CHUNK):
                connection.send(body[start : start + CHUNK])
                sent(min(start + CHUNK, len(body)), len(body))
            response = connection.getresponse()
            total = int(response.headers.get("Content-Length") or 0)
            chunks, done = [], 0
            while chunk := response.read(CHUNK):
                chunks.append(chunk)
                done += len(chunk)
                received(done, max(total, done))
            return response.status, dict(response.headers.items()), b"".join(chunks)
        except OSError as exc:
            raise RegistryError(0, f"cannot reach {url}: {exc}") from exc
        finally:
            connection.close()

    return post


def read_plan_file(path: str) -> tuple[bytes, str]:
    """The body to send and its media type: a JSON array as is, else one number per line."""
    data = Path(path).read_bytes()
    if data.lstrip()[:1] == b"[":
        return data, "application/json"
    return data, "text/plain; charset=utf-8"


def send_plan(
    base_url: str,
    token: str,
    body: bytes,
    content_type: str,
    *,
    ndjson: bool = False,
    purpose: str | None = None,
    poster: Poster | None = None,
    sent: Progress = lambda done, total: None,
    received: Progress = lambda done, total: None,
) -> tuple[bytes, str | None]:
    """POST the plan; returns the answer bytes and the receipt header."""
    url = base_url.rstrip("/") + "/api/v1/routing-plans"
    if purpose:
        url += "?" + urllib.parse.urlencode({"purpose": purpose})
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": content_type,
        "Accept": "application/x-ndjson" if ndjson else "application/json",
    }
    status, answer_headers, answer = (poster or http_poster())(url, headers, body, sent, received)
    if status != 200:
        try:
            detail = json.loads(answer).get("detail", "")
        except ValueError:
            detail = answer[:200].decode(errors="replace")
        raise RegistryError(status, detail)
    receipt = {k.lower(): v for k, v in answer_headers.items()}.get("vault-registry-receipt")
    return answer, receipt


StateFetcher = Callable[[int, list[str]], dict[str, Any]]
"""``fetch(size, keys) -> {"map_root", "proof", "records"}``: POST /api/v1/state/proofs with
``with_providers``; tests inject one."""


def state_fetcher(base_url: str, poster: Poster | None = None) -> StateFetcher:
    """The registry's state proofs over HTTP (public: no token)."""
    post = poster or http_poster()

    def fetch(size: int, keys: list[str]) -> dict[str, Any]:
        body = json.dumps({"size": size, "keys": keys, "with_providers": True}).encode()
        status, _headers, answer = post(
            base_url.rstrip("/") + "/api/v1/state/proofs",
            {"Content-Type": "application/json", "Accept": "application/json"},
            body,
            lambda done, total: None,
            lambda done, total: None,
        )
        if status != 200:
            raise RegistryError(status, answer[:200].decode(errors="replace"))
        return json.loads(answer)

    return fetch


def parse_plan(answer: bytes) -> dict[str, Any]:
    """A plan answer, JSON or NDJSON, as one JSON document."""
    text = answer.lstrip()
    if not text.startswith(b"{") or b'"type":"plan"' not in text.split(b"\n", 1)[0]:
        return json.loads(answer)
    lines = [json.loads(line) for line in answer.splitlines() if line.strip()]
    plan = {k: v for k, v in lines[0].items() if k != "type"}
    plan |= {"groups": [], "unroutable": [], "duplicates": []}
    for line in lines[1:]:
        kind = line.pop("type")
        plan[
            {"group": "groups", "unroutable": "unroutable", "duplicate": "duplicates"}[kind]
        ].append(line)
    return plan


@dataclass
class VerifiedPlan:
    receipt: dict[str, Any]
    checkpoint: Any
    cosigners: list[str]
    numbers: int


def verify_plan(
    receipt: str | None,
    trust: Trust,
    request: bytes,
    answer: bytes,
    fetch_state: StateFetcher,
    *,
    purpose: str | None = None,
    now: float | None = None,
) -> VerifiedPlan:
    """Verify a routing plan completely: its receipt signs exactly the request and answer
    bytes and the purpose asked; its checkpoint is trusted (signature, age, witnesses); every
    number asked appears once and is placed (group or unroutable reason) where the signed state
    map puts it for that purpose, with every group's provider, endpoints (those accepting the
    purpose's document type) and certificates derived from the proven records."""
    now = time.time() if now is None else now
    purpose = purpose or None
    if not receipt:
        raise ClientError("the plan came without a receipt")
    payload = verify_receipt(receipt, trust.keys, now=now)
    if payload.get("typ") != "routing-plan":
        raise Tampered("the receipt is not a routing plan's")
    if payload["asked"].get("request_sha256") != hashlib.sha256(request).hexdigest():
        raise Tampered("the receipt signs another request than the one sent")
    if payload["answer"].get("answer_sha256") != hashlib.sha256(answer).hexdigest():
        raise Tampered("the answer differs from what its receipt signed")
    if payload["asked"].get("purpose") != purpose:
        raise Tampered(
            f"the receipt answers purpose {payload['asked'].get('purpose')!r}, "
            f"not the {purpose!r} asked"
        )
    plan = parse_plan(answer)
    if plan.get("purpose") != purpose:
        raise PlanMismatch(
            f"the plan is resolved for purpose {plan.get('purpose')!r}, not {purpose!r}"
        )
    checkpoint, cosigners = check_trusted(plan.get("checkpoint") or "", trust, now=now)
    if not same_checkpoint(payload.get("checkpoint"), checkpoint.note):
        raise Tampered("the receipt is bound to another checkpoint than the plan")
    at = plan.get("at")
    if not isinstance(at, str) or abs((epoch(at) or 0) - now) > LEEWAY:
        raise PlanMismatch("the plan does not hold for now")
    expected, counts = _expected_placements(request, trust.keys.allocators, trust.keys.country)
    placed: dict[str, Any] = {}
    for group in plan.get("groups", []):
        for number in group.get("numbers", []):
            placed[number] = group
    for item in plan.get("unroutable", []):
        placed[item["number"]] = item["reason"]
    if set(placed) != set(expected) or len(placed) != sum(
        len(g.get("numbers", [])) for g in plan.get("groups", [])
    ) + len(plan.get("unroutable", [])):
        raise PlanMismatch("the plan does not answer each number asked exactly once")
    valid = [number for number, reason in expected.items() if reason is None]
    vaults, providers = _proven_state(checkpoint, valid, fetch_state)
    for number in valid:
        vault = vaults[number]
        provider = providers.get(vault["provider"]) if vault else None
        reason = rec.placement(vault, provider, at, purpose)
        where = placed[number]
        if reason is not None:
            if where != reason:
                raise PlanMismatch(f"{number}: the signed state says {reason}, the plan {where}")
            continue
        if not isinstance(where, dict) or where.get("provider", {}).get("id") != provider["id"]:
            raise PlanMismatch(f"{number}: the signed state routes it to provider {provider['id']}")
    _check_counts(plan, counts)
    for number, reason in expected.items():
        if reason is not None and placed[number] != reason:
            raise PlanMismatch(f"{number!r}: refused as {reason}, the plan says {placed[number]}")
    for group in plan.get("groups", []):
        provider = providers.get(group.get("provider", {}).get("id"))
        if provider is None:
            raise PlanMismatch("a group names a provider the signed state does not hold")
        derived = rec.route_fields(provider, at, purpose)
        shown = {key: without_pem(group.get(key)) for key in derived}
        if shown != derived:
            raise PlanMismatch(f"provider {provider['id']}: the group is not its signed record")
        for certificate in group.get("encryption_certificates", []):
            if pem_fingerprint(certificate.get("pem") or "") != certificate["fingerprint_sha256"]:
                raise CertificateMismatch(f"certificate {certificate['id']}: PEM not as published")
    return VerifiedPlan(payload, checkpoint, cosigners, len(expected))


def _expected_placements(
    request: bytes, allocators, country
) -> tuple[dict[str, str | None], Counter[str]]:
    """Each distinct entry of the request: None for a well-formed number (its normal form),
    or ``invalid:<code>`` as the registry's own parser refuses it (with the allocator codes
    and the country pinned with the registry's keys); and how many times each was asked."""
    text = request.decode("utf-8-sig")
    if text.lstrip().startswith("["):
        items = json.loads(text)
    else:
        items = [line.strip().strip(",").strip('"') for line in text.split("\n")]
        items = [item for item in items if item]
    expected: dict[str, str | None] = {}
    counts: Counter[str] = Counter()
    for raw in items:
        try:
            number = numbers.parse(raw, allocators, country).value
            expected[number] = None
        except numbers.InvalidNumber as exc:
            number = raw
            expected[raw] = f"{rec.Reason.INVALID}:{exc.code}"
        counts[number] += 1
    return expected, counts


def _check_counts(plan: dict[str, Any], counts: Counter[str]) -> None:
    """The summary, each group's count and the duplicates say what the placements say."""
    groups, unroutable = plan.get("groups", []), plan.get("unroutable", [])
    for group in groups:
        if group.get("count") != len(group.get("numbers", [])):
            raise PlanMismatch("a group's count is not the number of its numbers")
    routable = sum(len(group.get("numbers", [])) for group in groups)
    summary = {
        "asked": sum(counts.values()),
        "distinct": len(counts),
        "duplicated": sum(1 for c in counts.values() if c > 1),
        "routable": routable,
        "unroutable": len(counts) - routable,
        "unroutable_by_reason": dict(sorted(Counter(i["reason"] for i in unroutable).items())),
        "providers": len(groups),
    }
    if plan.get("summary") != summary:
        raise PlanMismatch("the plan's summary is not what its placements say")
    duplicates = sorted((n, c) for n, c in counts.items() if c > 1)
    if sorted((d.get("number"), d.get("count")) for d in plan.get("duplicates", [])) != duplicates:
        raise PlanMismatch("the plan's duplicates are not the numbers asked several times")


def _proven_state(checkpoint, valid: list[str], fetch_state: StateFetcher):
    """The vault records of ``valid`` and their providers', proven by one multiproof."""
    if not valid:
        return {}, {}
    answer = fetch_state(checkpoint.size, [rec.vault_key(n) for n in valid])
    if answer.get("size") != checkpoint.size:
        raise PlanMismatch("the state proof is for another checkpoint")
    records = answer.get("records") or {}
    keys = {rec.vault_key(n) for n in valid}
    providers_wanted = {
        rec.provider_key(r["provider"])
        for k, r in records.items()
        if k in keys and isinstance(r, dict) and "provider" in r
    }
    wanted = keys | providers_wanted
    if not wanted <= set(records):
        raise PlanMismatch("the state proof leaves out records the plan depends on")
    verify_records(checkpoint.map_root, answer.get("proof", ""), {k: records[k] for k in wanted})
    vaults = {n: records[rec.vault_key(n)] for n in valid}
    providers = {k.partition(":")[2]: records[k] for k in providers_wanted}
    return vaults, providers
