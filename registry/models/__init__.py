"""The book of record. Every write to these models goes through registry.services."""

from registry.models.log import AuditEvent, LogEntry, LogHead, LogKind
from registry.models.messages import DeliveryState, Message, MessageKind, Webhook
from registry.models.organisations import (
    Issuer,
    IssuerStatusChange,
    IssuerUsage,
    OrganisationStatus,
    Provider,
    ProviderStatusChange,
    Purpose,
)
from registry.models.routing import Certificate, CertificateUse, Endpoint, Vault, VaultStatus
from registry.models.tokens import ApiToken, TokenScope
from registry.models.transfers import (
    CodeVoidReason,
    RejectionReason,
    ServerCancelCause,
    Transfer,
    TransferCode,
    TransferCodeState,
    TransferSide,
    TransferState,
)

__all__ = [
    "ApiToken",
    "AuditEvent",
    "Certificate",
    "CertificateUse",
    "CodeVoidReason",
    "DeliveryState",
    "Endpoint",
    "Issuer",
    "IssuerStatusChange",
    "IssuerUsage",
    "LogEntry",
    "LogHead",
    "LogKind",
    "Message",
    "MessageKind",
    "OrganisationStatus",
    "Provider",
    "ProviderStatusChange",
    "Purpose",
    "RejectionReason",
    "ServerCancelCause",
    "TokenScope",
    "Transfer",
    "TransferCode",
    "TransferCodeState",
    "TransferSide",
    "TransferState",
    "Vault",
    "VaultStatus",
    "Webhook",
]
