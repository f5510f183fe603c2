"""What portal pages read: a provider's readiness to receive documents, working days left,
an organisation's audit trail. Reads only."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from registry import workdays
from registry.models import (
    AuditEvent,
    Certificate,
    CertificateUse,
    Endpoint,
    Issuer,
    OrganisationStatus,
    Provider,
    Vault,
)


@dataclass
class Readiness:
    """Whether documents can reach the provider's vaults, and every reason why not."""

    ready: bool
    reasons: list[str] = field(default_factory=list)
    endpoints: list[Endpoint] = field(default_factory=list)
    certificates: list[Certificate] = field(default_factory=list)


def provider_readiness(provider: Provider, now: datetime | None = None) -> Readiness:
    """The start page's answer, with the same rules as a lookup's ``deliverable``."""
    now = now or timezone.now()
    endpoints = list(Endpoint.objects.active(now).filter(provider=provider))
    certificates = list(
        Certificate.objects.valid(now)
        .filter(provider=provider, use=CertificateUse.ENCRYPTION)
        .order_by("not_after")
    )
    reasons = []
    if provider.status == OrganisationStatus.SUSPENDED:
        reasons.append(_("Your organisation is suspended by the federation."))
    elif provider.status != OrganisationStatus.ACTIVE:
        reasons.append(
            _("Your organisation is %(status)s, not active.")
            % {"status": provider.get_status_display()}
        )
    if not endpoints:
        reasons.append(_("No active delivery endpoint: add one."))
    if not certificates:
        reasons.append(_("No valid encryption certificate: upload one."))
    return Readiness(not reasons, reasons, endpoints, certificates)


def days_left(moment: datetime, now: datetime | None = None) -> int:
    """Whole days until ``moment`` (negative once past)."""
    return (moment - (now or timezone.now())).days


def working_days_left(deadline: datetime, now: datetime | None = None) -> int:
    """Working days (weekends and public holidays skipped) from today to the deadline's day,
    counted in the transfer time zone, the deadline's day included."""
    zone = ZoneInfo(settings.TRANSFER_TIME_ZONE)
    day = (now or timezone.now()).astimezone(zone).date()
    last = deadline.astimezone(zone).date()
    count = 0
    while day < last:
        day += timedelta(days=1)
        if workdays.is_working_day(day, settings.TRANSFER_HOLIDAYS_COUNTRY):
            count += 1
    return count


def vaults_affected_by_endpoint(endpoint: Endpoint) -> int:
    """Open vaults that become undeliverable if this endpoint goes: all of the provider's when
    it is the last active one, none otherwise."""
    others = Endpoint.objects.active().filter(provider_id=endpoint.provider_id)
    if others.exclude(pk=endpoint.pk).exists():
        return 0
    return Vault.objects.open().filter(provider_id=endpoint.provider_id).count()


def audit_trail(organisation: Provider | Issuer) -> QuerySet[AuditEvent]:
    """What was done by the organisation's people and tokens, and to the organisation."""
    kind = "provider" if isinstance(organisation, Provider) else "issuer"
    return AuditEvent.objects.filter(
        Q(actor__contains=f"{kind}:{organisation.pk}") | Q(target_id=str(organisation.pk))
    )
