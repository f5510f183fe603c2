"""The providers' message queues (transactional outbox), their acknowledgement, and webhooks.

``message_enqueue`` runs inside the transaction of the change it reports, so a message exists if
and only if the change committed: nothing is lost on a crash, nothing is announced that did not
happen. Delivery to webhooks happens later, from the queue (``registry.services.webhooks``).
"""

from __future__ import annotations

import base64
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.utils import timezone

from registry import destinations
from registry.errors import ErrorCode, InvalidInput, NotFound
from registry.models import (
    Certificate,
    DeliveryState,
    Message,
    MessageKind,
    OrganisationStatus,
    Provider,
    Webhook,
)
from registry.services.common import Actor, lock_providers, record_audit, timestamp

WEBHOOK_SECRET_PREFIX = "whsec_"


def message_enqueue(
    *,
    provider: Provider | Any,
    kind: MessageKind,
    data: dict[str, Any],
    at: datetime,
    dedup_key: str = "",
) -> Message:
    """Queue a message for ``provider``; must run inside the transaction of the change.

    A ``dedup_key`` makes it unique: queuing it again raises IntegrityError.
    """
    return Message.objects.create(
        provider_id=getattr(provider, "pk", provider),
        kind=kind,
        payload=data,
        dedup_key=dedup_key,
        created_at=at,
        next_delivery_at=at,
    )


def message_body(message: Message) -> dict[str, Any]:
    """What a webhook receives: the message's id, kind, time and data (the poll queue's
    serializer answers the same members)."""
    return {
        "id": message.pk,
        "kind": message.kind,
        "created_at": timestamp(message.created_at),
        "data": message.payload,
    }


@transaction.atomic
def message_ack(
    *, actor: Actor, provider: Provider, message_id: int, now: datetime | None = None
) -> Message:
    """Acknowledge one of ``provider``'s messages; acknowledging it again changes nothing.

    Acknowledged messages leave the poll queue and are no longer pushed to the webhook.
    """
    message = Message.objects.select_for_update().filter(pk=message_id, provider=provider).first()
    if message is None:
        raise NotFound(ErrorCode.MESSAGE_NOT_FOUND, "You have no message with this id.")
    if message.acked_at is None:
        now = now or timezone.now()
        message.acked_at = now
        message.save(update_fields=["acked_at"])
        record_audit(actor, "message:acked", message, at=now, data={"kind": message.kind})
    return message


@transaction.atomic
def certificate_notify_expiring(*, actor: Actor, now: datetime | None = None) -> int:
    """Queue one ``certificate.expiring`` message per live certificate that expires soon.

    Idempotent: a certificate is announced once (its dedup key), however often this runs.
    """
    now = now or timezone.now()
    horizon = now + timedelta(days=settings.CERTIFICATE_EXPIRY_NOTICE_DAYS)
    expiring = list(
        Certificate.objects.valid(now)
        .filter(not_after__lte=horizon, provider__status=OrganisationStatus.ACTIVE)
        .order_by("not_after", "id")
    )
    announced = set(
        Message.objects.filter(
            kind=MessageKind.CERTIFICATE_EXPIRING,
            dedup_key__in=[f"certificate:{certificate.pk}" for certificate in expiring],
        ).values_list("dedup_key", flat=True)
    )
    count = 0
    for certificate in expiring:
        key = f"certificate:{certificate.pk}"
        if key in announced:
            continue
        try:
            with transaction.atomic():
                message_enqueue(
                    provider=certificate.provider_id,
                    kind=MessageKind.CERTIFICATE_EXPIRING,
                    data={
                        "certificate": str(certificate.pk),
                        "use": certificate.use,
                        "fingerprint_sha256": certificate.fingerprint_sha256,
                        "not_after": timestamp(certificate.not_after),
                    },
                    at=now,
                    dedup_key=key,
                )
        except IntegrityError:  # announced concurrently by another run
            continue
        record_audit(actor, "certificate:expiry_notified", certificate, at=now)
        count += 1
    return count


def _validate_webhook_url(url: str) -> str:
    """An https:// URL without credentials whose host resolves to public addresses only
    (registry.destinations; VAULT_WEBHOOK_ALLOW_PRIVATE lifts the address rule)."""
    url = (url or "").strip()
    try:
        URLValidator(schemes=["https"])(url)
    except ValidationError:
        raise InvalidInput(
            ErrorCode.VALIDATION_ERROR,
            "A webhook URL must be an https:// URL.",
            extra={"errors": [{"field": "url", "code": "not_https", "message": "https only"}]},
        ) from None
    try:
        destinations.check(url, allow_private=settings.VAULT_WEBHOOK_ALLOW_PRIVATE)
    except destinations.RefusedDestination as exc:
        raise InvalidInput(
            ErrorCode.VALIDATION_ERROR,
            f"This webhook URL is refused: {exc.message}.",
            extra={"errors": [{"field": "url", "code": str(exc.code), "message": exc.message}]},
        ) from None
    return url


@transaction.atomic
def webhook_register(
    *, actor: Actor, provider: Provider, url: str, now: datetime | None = None
) -> tuple[Webhook, str]:
    """Register (or replace) the provider's webhook; returns it with its secret, shown once.

    Messages still in the queue are pushed to the new URL too: delivery is at least once.
    """
    url = _validate_webhook_url(url)
    now = now or timezone.now()
    provider = lock_providers(provider.pk)[provider.pk]
    Webhook.objects.live().filter(provider=provider).update(removed_at=now)
    # Standard Webhooks form: the prefix, then the base64 of 32 random key bytes.
    secret = WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()
    webhook = Webhook.objects.create(provider=provider, url=url, secret=secret, created_at=now)
    # A message abandoned on the old URL deserves a try on the new one.
    Message.objects.filter(
        provider=provider, acked_at__isnull=True, delivery_state=DeliveryState.ABANDONED
    ).update(delivery_state=DeliveryState.PENDING, delivery_attempts=0, next_delivery_at=now)
    record_audit(actor, "webhook:registered", webhook, at=now, data={"url": url})
    return webhook, secret


@transaction.atomic
def webhook_remove(*, actor: Actor, provider: Provider, now: datetime | None = None) -> Webhook:
    """Stop pushing messages; the poll queue keeps them."""
    now = now or timezone.now()
    webhook = Webhook.objects.select_for_update().live().filter(provider=provider).first()
    if webhook is None:
        raise NotFound(ErrorCode.WEBHOOK_NOT_FOUND, "You have no webhook.")
    webhook.removed_at = now
    webhook.save(update_fields=["removed_at"])
    record_audit(actor, "webhook:removed", webhook, at=now, data={"url": webhook.url})
    return webhook
