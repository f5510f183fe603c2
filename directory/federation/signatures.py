"""Registry-to-registry requests: RFC 9421 HTTP Message Signatures, Ed25519.

The asking registry signs with its peer key (``keys.Purpose.PEER``), ``keyid`` = its member name
in the federation document, which lists the public key (``request_key``). The signature covers
the method, the target URI (so it cannot be replayed against another member), the asking
issuer (``Vault-Federation-Issuer``, for attribution) and, with a body, its Content-Digest; its
parameters carry ``created`` and a random ``nonce``.

The home registry refuses (problem+json): no signature (401 ``unsigned_request``), a keyid that
is no active member (403 ``not_a_federation_member``), a signature that does not verify or
leaves a required component uncovered (401 ``invalid_request_signature``), one created more
than 60 s ago (401 ``stale_request``), and a nonce already seen (401 ``replayed_request``).
The target URI is rebuilt from this registry's own URL in the document, not from the Host
header, so a proxy in front changes nothing and a request signed for another member fails.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.db import IntegrityError, transaction
from django.utils import timezone
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    InvalidSignature,
    MappingKeyResolver,
    algorithms,
)
from http_message_signatures.exceptions import HTTPMessageSignaturesException
from http_message_signatures.structures import CaseInsensitiveDict

from directory import keys
from directory.federation import members
from directory.federation.models import SeenNonce
from directory.transparency import federation as fed
from registry.errors import DomainError, ErrorCode, Forbidden, Unauthorized

ISSUER_HEADER = "Vault-Federation-Issuer"
MAX_AGE = 60  # seconds: an older request is refused as stale
NONCE_KEEP = 2 * MAX_AGE  # nonces are kept past the validity window, then purged
COVERED = ("@method", "@target-uri", ISSUER_HEADER.lower())


@dataclass(frozen=True, slots=True)
class _Message:
    """The view of a request the library signs and verifies: method, absolute URL, headers."""

    method: str
    url: str
    headers: Any


def sign_request(
    method: str, url: str, headers: dict[str, str], body: bytes | None, issuer: str
) -> dict[str, str]:
    """``headers`` plus the signature headers (and Content-Digest with a body) of one request
    from this registry, on behalf of ``issuer`` (the asking issuer's id)."""
    me = members.self_member()
    if me is None:
        raise DomainError(
            ErrorCode.NO_FEDERATION, "This registry is not in a federation document.", status=503
        )
    key = keys.signing_key(keys.Purpose.PEER)
    return sign_as(me.name, key.private, method, url, headers, body, issuer)


def sign_as(
    name: str,
    private_key: Ed25519PrivateKey,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes | None,
    issuer: str,
    *,
    created: datetime | None = None,
) -> dict[str, str]:
    """The signed headers of a request by member ``name`` with its peer key (``created``: now
    unless given; the tests sign stale requests with it)."""
    message = _Message(method, url, CaseInsensitiveDict({**headers, ISSUER_HEADER: issuer}))
    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(public_keys={}, private_keys={name: private_key}),
    )
    covered = COVERED if body is None else (*COVERED, "content-digest")
    signer.sign(
        message,
        key_id=name,
        created=created,
        nonce=secrets.token_urlsafe(18),
        label="vault",
        covered_component_ids=covered,
        body=body,
    )
    return dict(message.headers.items())


def _member_keys(document: fed.Document) -> dict[str, Ed25519PublicKey]:
    return {
        m.name: Ed25519PublicKey.from_public_bytes(m.request_key)
        for m in document.members
        if m.status == fed.MemberStatus.ACTIVE
    }


@dataclass(frozen=True, slots=True)
class PeerRequest:
    """A verified request from another member registry, on behalf of one of its issuers."""

    member: fed.Member
    issuer: str

    @property
    def attribution(self) -> str:
        return f"{self.member.name}/{self.issuer}"


def verify_request(request, *, now: float | None = None) -> PeerRequest:
    """Check a registry-to-registry request (a Django request); the member and issuer."""
    meta = request.META
    if "HTTP_SIGNATURE_INPUT" not in meta or "HTTP_SIGNATURE" not in meta:
        raise Unauthorized(
            ErrorCode.UNSIGNED_REQUEST, "A registry-to-registry request must be signed (RFC 9421)."
        )
    document = members.current()
    me = members.self_member(document)
    if document is None or me is None:
        raise Forbidden(ErrorCode.NO_FEDERATION, "This registry is in no federation.")
    public = _member_keys(document)
    asked: list[str] = []

    class Resolver(MappingKeyResolver):
        def resolve_public_key(self, key_id: str):
            asked.append(key_id)
            return super().resolve_public_key(key_id)

    verifier = HTTPMessageVerifier(
        signature_algorithm=algorithms.ED25519,
        key_resolver=Resolver(public_keys=public, private_keys={}),
    )
    headers = CaseInsensitiveDict(request.headers.items())
    message = _Message(request.method, me.url + request.get_full_path(), headers)
    body = request.body if request.method == "POST" else None
    try:
        results = verifier.verify(
            message, max_age=None, expect_tag=None, require_components=COVERED, body=body
        )
    except (InvalidSignature, HTTPMessageSignaturesException) as exc:
        if asked and asked[-1] not in public:
            raise Forbidden(
                ErrorCode.NOT_A_FEDERATION_MEMBER,
                f"{asked[-1]!r} is not an active member of the federation.",
            ) from exc
        raise Unauthorized(
            ErrorCode.INVALID_REQUEST_SIGNATURE, f"The request's signature is refused: {exc}"
        ) from exc
    params = results[0].parameters
    name, created, nonce = params.get("keyid"), params.get("created"), params.get("nonce")
    now = time.time() if now is None else now
    if not isinstance(created, int) or now - created > MAX_AGE:
        raise Unauthorized(
            ErrorCode.STALE_REQUEST, f"The request was signed more than {MAX_AGE} s ago."
        )
    if not isinstance(nonce, str) or not 16 <= len(nonce) <= 200:
        raise Unauthorized(ErrorCode.INVALID_REQUEST_SIGNATURE, "The signature has no nonce.")
    _remember(name, nonce)
    member = document.member(name)
    assert member is not None
    return PeerRequest(member, headers.get(ISSUER_HEADER, "") or "")


def _remember(member: str, nonce: str) -> None:
    """Refuse a nonce seen before (the unique constraint decides, across processes)."""
    now = timezone.now()
    try:
        with transaction.atomic():
            SeenNonce.objects.create(member=member, nonce=nonce, created_at=now)
    except IntegrityError:
        raise Unauthorized(
            ErrorCode.REPLAYED_REQUEST, "This request was already answered (nonce seen)."
        ) from None
    SeenNonce.objects.filter(created_at__lt=now - timedelta(seconds=NONCE_KEEP)).delete()
