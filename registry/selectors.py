"""Reads of the book of record for federation admins: who can receive documents now, what a
change would make undeliverable, and the work waiting.

These read the tables, not the signed log: they say what a change *will* do before it is made.
What issuers are told comes from the state map (``directory.proven``); a vault's admin page
shows both.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from directory.transparency.records import Reason
from registry.models import (
    Certificate,
    CertificateUse,
    Endpoint,
    Issuer,
    OrganisationStatus,
    Provider,
    Transfer,
    Vault,
    VaultStatus,
)


def _has_endpoint(at: datetime, exclude: Iterable[Any] = ()) -> Exists:
    return Exists(
        Endpoint.objects.active(at).filter(provider=OuterRef("pk")).exclude(pk__in=exclude)
    )


def _has_certificate(at: datetime, exclude: Iterable[Any] = ()) -> Exists:
    return Exists(
        Certificate.objects.valid(at)
        .filter(provider=OuterRef("pk"), use=CertificateUse.ENCRYPTION)
        .exclude(pk__in=exclude)
    )


def deliverable_providers(at: datetime | None = None) -> QuerySet[Provider]:
    """Providers that can receive documents at ``at``: active, with an active endpoint and a
    valid encryption certificate (DESIGN.md §4)."""
    at = at or timezone.now()
    return Provider.objects.filter(
        _has_endpoint(at), _has_certificate(at), status=OrganisationStatus.ACTIVE
    )


def deliverable_vaults(vaults: QuerySet[Vault], at: datetime | None = None) -> QuerySet[Vault]:
    """Those of ``vaults`` that can be delivered to at ``at``."""
    return vaults.filter(
        status=VaultStatus.ACTIVE,
        client_hold=False,
        server_hold=False,
        provider__in=deliverable_providers(at).values("pk"),
    )


# --- What a change would do ------------------------------------------------------------------


def undeliverable_if_held(vaults: QuerySet[Vault]) -> int:
    """Vaults a hold or a closure makes undeliverable: those deliverable now."""
    return deliverable_vaults(vaults.order_by()).count()


def deliverable_if_released(vaults: QuerySet[Vault]) -> int:
    """Vaults that become deliverable when their server hold is lifted."""
    return (
        vaults.order_by()
        .filter(
            status=VaultStatus.ACTIVE,
            server_hold=True,
            client_hold=False,
            provider__in=deliverable_providers().values("pk"),
        )
        .count()
    )


def undeliverable_if_providers_stop(providers: QuerySet[Provider]) -> int:
    """Vaults made undeliverable when these providers stop being active."""
    return deliverable_vaults(
        Vault.objects.filter(provider__in=providers.order_by().values("pk"))
    ).count()


def _undeliverable_if_gone(items: QuerySet, still_has) -> int:
    """Vaults made undeliverable when ``items`` (endpoints or certificates) go: those of the
    deliverable providers left without another one (``still_has(now, excluded ids)``)."""
    now = timezone.now()
    gone = list(items.order_by().values_list("pk", flat=True))
    losing = (
        deliverable_providers(now)
        .filter(pk__in=items.order_by().values("provider"))
        .exclude(pk__in=Provider.objects.filter(still_has(now, gone)).values("pk"))
    )
    return deliverable_vaults(Vault.objects.filter(provider__in=losing.values("pk")), now).count()


def undeliverable_if_endpoints_go(endpoints: QuerySet[Endpoint]) -> int:
    """Vaults made undeliverable when these endpoints are deactivated: those of the providers
    left without any other active endpoint."""
    return _undeliverable_if_gone(endpoints, _has_endpoint)


def undeliverable_if_certificates_go(certificates: QuerySet[Certificate]) -> int:
    """Vaults made undeliverable when these certificates are retired: those of the providers
    left without any other valid encryption certificate."""
    return _undeliverable_if_gone(certificates, _has_certificate)


def undeliverable_if_approved(transfers: QuerySet[Transfer]) -> int:
    """Vaults made undeliverable when these pending transfers are approved: deliverable now,
    moving to a gaining provider that cannot receive documents."""
    pending = transfers.order_by().pending()
    return deliverable_vaults(
        Vault.objects.filter(pk__in=pending.values("vault")).exclude(
            pk__in=pending.filter(gaining_provider__in=deliverable_providers().values("pk")).values(
                "vault"
            )
        )
    ).count()


# --- The work queue ----------------------------------------------------------------------------


def undeliverable_by_reason(at: datetime | None = None) -> tuple[int, dict[str, int]]:
    """Open vaults that cannot be delivered to now: how many, and how many per reason (a vault
    may have several, as lookups list them). One grouped query over vaults, one over providers.
    """
    at = at or timezone.now()
    providers = {
        row["pk"]: row
        for row in Provider.objects.annotate(
            endpoint=_has_endpoint(at), certificate=_has_certificate(at)
        ).values("pk", "status", "endpoint", "certificate")
    }
    held = Q(client_hold=True) | Q(server_hold=True)
    rows = (
        Vault.objects.filter(status=VaultStatus.ACTIVE)
        .order_by()
        .values("provider")
        .annotate(total=Count("pk"), held=Count("pk", filter=held))
    )
    reasons: Counter[str] = Counter()
    undeliverable = 0
    for row in rows:
        provider = providers[row["provider"]]
        provider_reasons = []
        if provider["status"] == OrganisationStatus.WITHDRAWN:
            provider_reasons.append(Reason.PROVIDER_WITHDRAWN)
        elif provider["status"] != OrganisationStatus.ACTIVE:
            provider_reasons.append(Reason.PROVIDER_SUSPENDED)
        if not provider["endpoint"]:
            provider_reasons.append(Reason.NO_ENDPOINT)
        if not provider["certificate"]:
            provider_reasons.append(Reason.NO_VALID_CERTIFICATE)
        for reason in provider_reasons:
            reasons[str(reason)] += row["total"]
        if row["held"]:
            reasons[str(Reason.HOLD)] += row["held"]
        undeliverable += row["total"] if provider_reasons else row["held"]
    return undeliverable, dict(sorted(reasons.items()))


def work_queue(now: datetime | None = None, *, deadline_hours: int = 24, days: int = 30) -> dict:
    """What waits for a federation admin: applications, transfers near their deadline,
    certificates expiring soon, undeliverable vaults."""
    now = now or timezone.now()
    undeliverable, reasons = undeliverable_by_reason(now)
    return {
        "provider_applications": Provider.objects.filter(status=OrganisationStatus.APPLIED).count(),
        "issuer_applications": Issuer.objects.filter(status=OrganisationStatus.APPLIED).count(),
        "transfers_due": Transfer.objects.pending()
        .filter(deadline__lte=now + timedelta(hours=deadline_hours))
        .count(),
        "transfers_pending": Transfer.objects.pending().count(),
        "certificates_expiring": Certificate.objects.valid(now)
        .filter(not_after__lte=now + timedelta(days=days))
        .count(),
        "undeliverable": undeliverable,
        "undeliverable_by_reason": reasons,
    }
