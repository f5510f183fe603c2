"""Resolve vault numbers to their routing: one number or many, through one path.

The single lookup and every later bulk answer call ``resolve``, so they can never disagree. Reads
are set-based: one query for the vaults (joined to their providers), one for the endpoints and one
for the certificates of the providers involved, whatever the number of vaults asked.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from django.utils import timezone

from registry.models import (
    Certificate,
    CertificateUse,
    Endpoint,
    OrganisationStatus,
    Vault,
    VaultStatus,
)
from registry.models.routing import VAULT_FLAGS
from registry.numbers import format_display


class Reason(StrEnum):
    """Why a vault cannot be delivered to; part of the public API."""

    CLOSED = "closed"
    HOLD = "hold"
    PROVIDER_SUSPENDED = "provider_suspended"
    PROVIDER_WITHDRAWN = "provider_withdrawn"
    NO_ENDPOINT = "no_endpoint"
    NO_VALID_CERTIFICATE = "no_valid_certificate"


_PROVIDER_REASONS = {
    OrganisationStatus.SUSPENDED: Reason.PROVIDER_SUSPENDED,
    OrganisationStatus.WITHDRAWN: Reason.PROVIDER_WITHDRAWN,
}


@dataclass(slots=True)
class ProviderRoute:
    """A provider's identity with what an issuer needs to deliver to it, fetched once."""

    id: str
    legal_name: str
    legal_id: str
    status: str
    log_sequence: int | None
    endpoints: list[dict[str, Any]] = field(default_factory=list)
    certificates: list[dict[str, Any]] = field(default_factory=list)

    def identity(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "legal_name": self.legal_name,
            "legal_id": self.legal_id,
            "status": self.status,
            "log_sequence": self.log_sequence,
        }


@dataclass(slots=True)
class Resolution:
    """Where one vault routes now, and whether it can be delivered to."""

    number: str
    status: str
    flags: list[str]
    log_sequence: int | None
    created_at: datetime
    closed_at: datetime | None
    provider: ProviderRoute
    reasons: list[Reason]

    @property
    def deliverable(self) -> bool:
        return not self.reasons

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "display": format_display(self.number),
            "status": self.status,
            "flags": self.flags,
            "deliverable": self.deliverable,
            "reasons": [str(reason) for reason in self.reasons],
            "provider": self.provider.identity(),
            "endpoints": self.provider.endpoints,
            "encryption_certificates": self.provider.certificates,
            "log_sequence": self.log_sequence,
        }


_VAULT_COLUMNS = (
    "number",
    "status",
    *VAULT_FLAGS,
    "last_log_index",
    "created_at",
    "closed_at",
    "provider_id",
    "provider__legal_name",
    "provider__legal_id_scheme",
    "provider__legal_id",
    "provider__status",
    "provider__last_log_index",
)


def provider_routes(
    provider_ids: Iterable[Any],
    at: datetime | None = None,
) -> dict[Any, tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    """Active endpoints and valid encryption certificates of these providers: two queries."""
    at = at or timezone.now()
    ids = list(set(provider_ids))
    routes: dict[Any, tuple[list, list]] = {pid: ([], []) for pid in ids}
    for row in (
        Endpoint.objects.active(at)
        .filter(provider_id__in=ids)
        .order_by("created_at", "id")
        .values(
            "provider_id",
            "id",
            "transport_profile",
            "url",
            "document_types",
            "activates_at",
            "expires_at",
        )
    ):
        pid = row.pop("provider_id")
        row["id"] = str(row["id"])
        routes[pid][0].append(row)
    for row in (
        Certificate.objects.valid(at)
        .filter(provider_id__in=ids, use=CertificateUse.ENCRYPTION)
        .order_by("not_after", "id")
        .values(
            "provider_id", "id", "fingerprint_sha256", "key_type", "not_before", "not_after", "pem"
        )
    ):
        pid = row.pop("provider_id")
        row["id"] = str(row["id"])
        routes[pid][1].append(row)
    return routes


def reasons_for(vault: dict[str, Any], provider: ProviderRoute) -> list[Reason]:
    """Every reason this vault cannot be delivered to, in a fixed order (DESIGN.md §4)."""
    reasons = []
    if vault["status"] == VaultStatus.CLOSED:
        reasons.append(Reason.CLOSED)
    if vault["client_hold"] or vault["server_hold"]:
        reasons.append(Reason.HOLD)
    if provider.status != OrganisationStatus.ACTIVE:
        reasons.append(_PROVIDER_REASONS.get(provider.status, Reason.PROVIDER_SUSPENDED))
    if not provider.endpoints:
        reasons.append(Reason.NO_ENDPOINT)
    if not provider.certificates:
        reasons.append(Reason.NO_VALID_CERTIFICATE)
    return reasons


def resolve(numbers: Iterable[str], at: datetime | None = None) -> dict[str, Resolution]:
    """Resolve normalised numbers; unknown ones are absent from the answer. Three queries."""
    wanted = list(set(numbers))
    if not wanted:
        return {}
    rows = list(Vault.objects.filter(number__in=wanted).values(*_VAULT_COLUMNS))
    routes = provider_routes((row["provider_id"] for row in rows), at)
    providers: dict[Any, ProviderRoute] = {}
    answer = {}
    for row in rows:
        pid = row["provider_id"]
        provider = providers.get(pid)
        if provider is None:
            endpoints, certificates = routes[pid]
            provider = providers[pid] = ProviderRoute(
                id=str(pid),
                legal_name=row["provider__legal_name"],
                legal_id=f"{row['provider__legal_id_scheme']}:{row['provider__legal_id']}",
                status=row["provider__status"],
                log_sequence=row["provider__last_log_index"],
                endpoints=endpoints,
                certificates=certificates,
            )
        answer[row["number"]] = Resolution(
            number=row["number"],
            status=row["status"],
            flags=[flag for flag in VAULT_FLAGS if row[flag]],
            log_sequence=row["last_log_index"],
            created_at=row["created_at"],
            closed_at=row["closed_at"],
            provider=provider,
            reasons=reasons_for(row, provider),
        )
    return answer


def resolve_one(number: str, at: datetime | None = None) -> Resolution | None:
    return resolve([number], at).get(number)
