"""The book of record. Every write to these models goes through registry.services."""

from registry.models.log import AuditEvent, LogEntry, LogHead, LogKind
from registry.models.organisations import (
    Issuer,
    IssuerStatusChange,
    OrganisationStatus,
    Provider,
    ProviderStatusChange,
    Purpose,
)
from registry.models.routing import Certificate, CertificateUse, Endpoint, Vault, VaultStatus
from registry.models.tokens import ApiToken, TokenScope

__all__ = [
    "ApiToken",
    "AuditEvent",
    "Certificate",
    "CertificateUse",
    "Endpoint",
    "Issuer",
    "IssuerStatusChange",
    "LogEntry",
    "LogHead",
    "LogKind",
    "OrganisationStatus",
    "Provider",
    "ProviderStatusChange",
    "Purpose",
    "TokenScope",
    "Vault",
    "VaultStatus",
]
