"""Endpoints and certificates a provider publishes (DESIGN.md §3). Each change is logged."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from registry import x509
from registry.errors import Conflict, ErrorCode, InvalidInput
from registry.models import Certificate, Endpoint, LogKind, Provider
from registry.services.common import (
    Actor,
    append_log,
    lock_active_provider,
    lock_providers,
    provider_record,
    reason_data,
    record_audit,
    timestamp,
    touch_provider,
)


@transaction.atomic
def endpoint_create(
    *,
    actor: Actor,
    provider: Provider,
    transport_profile: str,
    url: str,
    document_types: Iterable[str] = (),
    activates_at: datetime | None = None,
    expires_at: datetime | None = None,
) -> Endpoint:
    """Publish a delivery endpoint for an active provider."""
    provider = lock_active_provider(provider)
    now = timezone.now()
    endpoint = Endpoint(
        provider=provider,
        transport_profile=transport_profile,
        url=url,
        document_types=list(document_types),
        activates_at=activates_at or now,
        expires_at=expires_at,
        created_at=now,
    )
    endpoint.full_clean(validate_constraints=False)
    if Endpoint.objects.filter(
        provider=provider, transport_profile=transport_profile, url=url, deactivated_at__isnull=True
    ).exists():
        raise Conflict(
            ErrorCode.DUPLICATE_ENDPOINT,
            "This endpoint is already published for this transport profile.",
        )
    endpoint.save(force_insert=True)
    entry = append_log(
        LogKind.ENDPOINT_PUBLISHED,
        {
            "provider": str(provider.pk),
            "endpoint": str(endpoint.pk),
            "transport_profile": transport_profile,
            "url": url,
            "document_types": endpoint.document_types,
            "activates_at": timestamp(endpoint.activates_at),
            "expires_at": timestamp(expires_at) if expires_at else None,
        },
        at=now,
        records=[provider_record(provider.pk)],
    )
    touch_provider(provider.pk, entry.sequence)
    record_audit(actor, "endpoint:published", endpoint, at=now, log_entry=entry)
    return endpoint


@transaction.atomic
def endpoint_deactivate(*, actor: Actor, endpoint: Endpoint, reason: str = "") -> Endpoint:
    """Stop publishing an endpoint; it stays on record. The reason, if any, is audited."""
    lock_providers(endpoint.provider_id)  # before the endpoint: the lock order (common.py)
    endpoint = Endpoint.objects.select_for_update(no_key=True).get(pk=endpoint.pk)
    if endpoint.deactivated_at is not None:
        raise Conflict(
            ErrorCode.ENDPOINT_ALREADY_DEACTIVATED, "This endpoint is already deactivated."
        )
    now = timezone.now()
    endpoint.deactivated_at = now
    endpoint.save(update_fields=["deactivated_at"])
    entry = append_log(
        LogKind.ENDPOINT_DEACTIVATED,
        {
            "provider": str(endpoint.provider_id),
            "endpoint": str(endpoint.pk),
            "url": endpoint.url,
        },
        at=now,
        records=[provider_record(endpoint.provider_id)],
    )
    touch_provider(endpoint.provider_id, entry.sequence)
    record_audit(
        actor, "endpoint:deactivated", endpoint, at=now, log_entry=entry, data=reason_data(reason)
    )
    return endpoint


@transaction.atomic
def certificate_upload(
    *, actor: Actor, provider: Provider, use: str, pem: str | bytes
) -> Certificate:
    """Check a PEM certificate with registry.x509 and publish it for ``use``."""
    now = timezone.now()
    try:
        info = x509.inspect_certificate(pem, use, now=now, max_bytes=settings.VAULT_CERT_MAX_PEM)
    except x509.InvalidCertificate as exc:
        raise InvalidInput(exc.code, exc.message) from exc
    provider = lock_active_provider(provider)
    if Certificate.objects.filter(
        provider=provider,
        use=use,
        fingerprint_sha256=info.fingerprint_sha256,
        retired_at__isnull=True,
    ).exists():
        raise Conflict(
            ErrorCode.DUPLICATE_CERTIFICATE, "This certificate is already published for this use."
        )
    certificate = Certificate.objects.create(
        provider=provider,
        use=use,
        pem=info.pem,
        fingerprint_sha256=info.fingerprint_sha256,
        subject=info.subject[:500],
        issuer=info.issuer[:500],
        serial_number=info.serial_number,
        not_before=info.not_before,
        not_after=info.not_after,
        key_type=info.key_type,
        key_size=info.key_size,
        created_at=now,
    )
    entry = append_log(
        LogKind.CERTIFICATE_PUBLISHED,
        {
            "provider": str(provider.pk),
            "certificate": str(certificate.pk),
            "use": use,
            "fingerprint_sha256": info.fingerprint_sha256,
            "not_before": timestamp(info.not_before),
            "not_after": timestamp(info.not_after),
        },
        at=now,
        records=[provider_record(provider.pk)],
    )
    touch_provider(provider.pk, entry.sequence)
    record_audit(actor, "certificate:published", certificate, at=now, log_entry=entry)
    return certificate


@transaction.atomic
def certificate_retire(*, actor: Actor, certificate: Certificate, reason: str = "") -> Certificate:
    """Withdraw a certificate before it expires (rollover done, or key compromised). The
    reason, if any, is audited."""
    lock_providers(certificate.provider_id)  # before the certificate: the lock order
    certificate = Certificate.objects.select_for_update(no_key=True).get(pk=certificate.pk)
    if certificate.retired_at is not None:
        raise Conflict(
            ErrorCode.CERTIFICATE_ALREADY_RETIRED, "This certificate is already retired."
        )
    now = timezone.now()
    certificate.retired_at = now
    certificate.save(update_fields=["retired_at"])
    entry = append_log(
        LogKind.CERTIFICATE_RETIRED,
        {
            "provider": str(certificate.provider_id),
            "certificate": str(certificate.pk),
            "fingerprint_sha256": certificate.fingerprint_sha256,
        },
        at=now,
        records=[provider_record(certificate.provider_id)],
    )
    touch_provider(certificate.provider_id, entry.sequence)
    record_audit(
        actor,
        "certificate:retired",
        certificate,
        at=now,
        log_entry=entry,
        data=reason_data(reason),
    )
    return certificate
