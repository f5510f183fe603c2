"""Onboarding and status of providers and issuers (DESIGN.md §3).

Applications land as ``applied``; a federation admin approves or rejects them. Every status change
keeps its history (who, when, why, from when); a provider's status is routing-relevant and logged.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from registry.errors import Conflict, ErrorCode, InvalidInput
from registry.models import (
    Issuer,
    LogKind,
    OrganisationStatus,
    Provider,
)
from registry.models.organisations import LIVE_STATUSES, STATUS_TRANSITIONS, Organisation
from registry.services.common import (
    Actor,
    append_log,
    provider_record,
    record_audit,
    timestamp,
    touch_provider,
)

Status = OrganisationStatus


def _check_legal_id_free(model: type[Organisation], instance: Organisation) -> None:
    taken = model.objects.filter(
        legal_id_scheme=instance.legal_id_scheme,
        legal_id=instance.legal_id,
        status__in=LIVE_STATUSES,
    ).exists()
    if taken:
        raise Conflict(
            ErrorCode.DUPLICATE_LEGAL_ID,
            "An application or member with this legal identifier already exists.",
        )


def _record_status_change(
    org: Organisation,
    *,
    previous: str,
    reason: str,
    actor: Actor,
    effective_at: datetime,
    at: datetime,
) -> None:
    """The organisation's status history row (ProviderStatusChange or IssuerStatusChange)."""
    org.status_changes.create(
        from_status=previous,
        to_status=org.status,
        reason=reason,
        actor=actor.label,
        actor_user=actor.user,
        effective_at=effective_at,
        created_at=at,
    )


def _create(model: type[Organisation], instance: Organisation, actor: Actor) -> Organisation:
    now = timezone.now()
    instance.status = Status.APPLIED
    instance.status_changed_at = now
    instance.created_at = now
    instance.full_clean(validate_constraints=False)
    _check_legal_id_free(model, instance)
    try:
        with transaction.atomic():
            instance.save(force_insert=True)
    except IntegrityError as exc:  # a concurrent application took the identifier
        raise Conflict(
            ErrorCode.DUPLICATE_LEGAL_ID,
            "An application or member with this legal identifier already exists.",
        ) from exc
    _record_status_change(
        instance, previous="", reason="application received", actor=actor, effective_at=now, at=now
    )
    record_audit(
        actor,
        "applied",
        instance,
        at=now,
        data={"legal_id_scheme": instance.legal_id_scheme, "legal_id": instance.legal_id},
    )
    return instance


@transaction.atomic
def provider_apply(
    *,
    actor: Actor,
    legal_name: str,
    legal_id: str,
    technical_email: str,
    security_email: str,
    legal_id_scheme: str = "siren",
    contact_name: str = "",
    certifications: Iterable[str] = (),
) -> Provider:
    """Record a provider's application to join the federation."""
    provider = Provider(
        legal_name=legal_name,
        legal_id=legal_id,
        legal_id_scheme=legal_id_scheme,
        contact_name=contact_name,
        technical_email=technical_email,
        security_email=security_email,
        certifications=list(certifications),
    )
    return _create(Provider, provider, actor)


@transaction.atomic
def issuer_apply(
    *,
    actor: Actor,
    legal_name: str,
    legal_id: str,
    technical_email: str,
    security_email: str,
    legal_id_scheme: str = "siren",
    contact_name: str = "",
    purposes: Iterable[str] = (),
) -> Issuer:
    """Record an issuer's application to resolve vault numbers."""
    issuer = Issuer(
        legal_name=legal_name,
        legal_id=legal_id,
        legal_id_scheme=legal_id_scheme,
        contact_name=contact_name,
        technical_email=technical_email,
        security_email=security_email,
        purposes=list(purposes),
    )
    return _create(Issuer, issuer, actor)


def _set_status(
    model: type[Organisation],
    pk: object,
    to: str,
    *,
    actor: Actor,
    reason: str,
    effective_at: datetime | None,
) -> tuple[Organisation, str, str, datetime]:
    """Lock, check and apply a status change with its history row; returns the organisation,
    its previous status, the stripped reason and the time of the change."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(
            ErrorCode.VALIDATION_ERROR,
            "A reason is required for a status change.",
            extra={"errors": [{"field": "reason", "code": "required"}]},
        )
    org = model.objects.select_for_update(no_key=True).get(pk=pk)  # lock order, step 1
    if to not in STATUS_TRANSITIONS[org.status]:
        raise Conflict(
            ErrorCode.INVALID_STATUS_TRANSITION,
            f"A {model._meta.verbose_name} cannot go from {org.status} to {to}.",
            extra={"status": org.status, "requested": to},
        )
    now = timezone.now()
    previous = org.status
    org.status = to
    org.status_changed_at = effective_at or now
    org.save(update_fields=["status", "status_changed_at"])
    _record_status_change(
        org,
        previous=previous,
        reason=reason,
        actor=actor,
        effective_at=org.status_changed_at,
        at=now,
    )
    return org, previous, reason, now


@transaction.atomic
def provider_set_status(
    *,
    actor: Actor,
    provider: Provider,
    status: str,
    reason: str,
    effective_at: datetime | None = None,
) -> Provider:
    """Move a provider along applied → active/rejected, active ↔ suspended, * → withdrawn."""
    org, previous, reason, now = _set_status(
        Provider, provider.pk, status, actor=actor, reason=reason, effective_at=effective_at
    )
    entry = append_log(
        LogKind.PROVIDER_STATUS,
        {
            "provider": str(org.pk),
            "legal_name": org.legal_name,
            "legal_id": f"{org.legal_id_scheme}:{org.legal_id}",
            "status": status,
            "previous_status": previous,
            "effective_at": timestamp(org.status_changed_at),
        },
        at=now,
        records=[provider_record(org.pk)],
    )
    touch_provider(org.pk, entry.sequence)
    org.last_log_index = entry.sequence
    record_audit(
        actor,
        f"status:{status}",
        org,
        at=now,
        log_entry=entry,
        data={"from": previous, "reason": reason},
    )
    return org


@transaction.atomic
def issuer_set_status(
    *, actor: Actor, issuer: Issuer, status: str, reason: str, effective_at: datetime | None = None
) -> Issuer:
    """Same life cycle as providers; issuers do not route, so no log entry."""
    org, previous, reason, now = _set_status(
        Issuer, issuer.pk, status, actor=actor, reason=reason, effective_at=effective_at
    )
    record_audit(actor, f"status:{status}", org, at=now, data={"from": previous, "reason": reason})
    return org


# An issuer's own rate limits, per token and minute. The columns are PositiveIntegerFields:
# PostgreSQL's integer bounds them.
MAX_RATE_PER_MINUTE = 2_147_483_647
LIMIT_FIELDS = ("rate_lookups_per_minute", "rate_plan_numbers_per_minute")


@transaction.atomic
def issuer_set_limits(
    *,
    actor: Actor,
    issuer: Issuer,
    lookups_per_minute: int | None,
    plan_numbers_per_minute: int | None,
    reason: str,
) -> Issuer:
    """Set an issuer's own rate limits per token and minute (``registry.ratelimit``): None
    goes back to the settings' defaults, 0 turns the limit off. Audited (``limits:changed``,
    before and after, the reason); nothing is written when nothing changes. Workers see the new
    limits within VAULT_TOKEN_CACHE_SECONDS (they read them with the token)."""
    reason = (reason or "").strip()
    errors = []
    if not reason:
        errors.append({"field": "reason", "code": "required"})
    wanted = dict(zip(LIMIT_FIELDS, (lookups_per_minute, plan_numbers_per_minute), strict=True))
    for field, value in wanted.items():
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not 0 <= value <= MAX_RATE_PER_MINUTE
        ):
            errors.append({"field": field, "code": "invalid_rate_limit"})
    if errors:
        raise InvalidInput(
            ErrorCode.VALIDATION_ERROR,
            "A reason is required, and each limit is empty (the default), 0 (no limit) or a "
            f"whole number up to {MAX_RATE_PER_MINUTE}.",
            extra={"errors": errors},
        )
    org = Issuer.objects.select_for_update(no_key=True).get(pk=issuer.pk)  # lock order, step 1
    before = {field: getattr(org, field) for field in LIMIT_FIELDS}
    if before == wanted:
        return org
    for field, value in wanted.items():
        setattr(org, field, value)
    org.save(update_fields=list(LIMIT_FIELDS))
    record_audit(
        actor,
        "limits:changed",
        org,
        at=timezone.now(),
        data={"before": before, "after": wanted, "reason": reason},
    )
    return org
