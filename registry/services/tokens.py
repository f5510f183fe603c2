"""API tokens: created by a federation admin for an active provider or issuer, shown once."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from registry.errors import Conflict, ErrorCode, InvalidInput
from registry.models import ApiToken, Issuer, Provider, TokenScope
from registry.services.common import Actor, reason_data, record_audit

TOKEN_PREFIX = "vr_"


def hash_token(value: str) -> str:
    """SHA-256 hex of a token value. Values carry 256 random bits, so no salt or stretching."""
    return hashlib.sha256(value.encode()).hexdigest()


@transaction.atomic
def token_create(
    *, actor: Actor, owner: Provider | Issuer, name: str, expires_in_days: int = 90
) -> tuple[ApiToken, str]:
    """Create a token; returns it with its value, which is never stored nor shown again."""
    if not 1 <= expires_in_days <= settings.VAULT_TOKEN_MAX_DAYS:
        raise InvalidInput(
            ErrorCode.VALIDATION_ERROR, f"A token lives 1 to {settings.VAULT_TOKEN_MAX_DAYS} days."
        )
    owner = type(owner).objects.select_for_update(no_key=True).get(pk=owner.pk)
    if not owner.is_active:
        raise Conflict(
            ErrorCode.PROVIDER_NOT_ACTIVE
            if isinstance(owner, Provider)
            else ErrorCode.ISSUER_NOT_ACTIVE,
            f"Tokens are only issued to active members; this one is {owner.status}.",
        )
    value = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = timezone.now()
    is_provider = isinstance(owner, Provider)
    token = ApiToken(
        provider=owner if is_provider else None,
        issuer=None if is_provider else owner,
        scope=TokenScope.PROVIDER if is_provider else TokenScope.LOOKUP,
        name=(name or "").strip() or "API token",
        prefix=value[:10],
        key_hash=hash_token(value),
        created_at=now,
        created_by=actor.user,
        expires_at=now + timedelta(days=expires_in_days),
    )
    token.full_clean()
    token.save(force_insert=True)
    record_audit(
        actor,
        "token:created",
        token,
        at=now,
        data={
            "owner": str(owner.pk),
            "scope": token.scope,
            "expires_at": token.expires_at.isoformat(),
        },
    )
    return token, value


@transaction.atomic
def token_revoke(*, actor: Actor, token: ApiToken, reason: str = "") -> ApiToken:
    """Revoke a token at once; it answers 401 token_revoked from now on. The reason, if any,
    is audited."""
    token = ApiToken.objects.select_for_update(no_key=True).get(pk=token.pk)
    if token.revoked_at is not None:
        raise Conflict(ErrorCode.TOKEN_ALREADY_REVOKED, "This token is already revoked.")
    now = timezone.now()
    token.revoked_at = now
    token.save(update_fields=["revoked_at"])
    record_audit(actor, "token:revoked", token, at=now, data=reason_data(reason))
    return token
