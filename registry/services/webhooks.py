"""Push queued messages to the providers' webhooks: signed, retried, at least once.

A worker (``manage.py deliver_webhooks``) claims due messages, POSTs each one outside any
transaction, then records the outcome: delivered, or retried after an exponential backoff kept in
the database (``next_delivery_at``), or abandoned after the last attempt, when the message stays
in the poll queue all the same. Several workers may run at once: a claim leases the messages
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL, then a lease time), so each is sent by one of them.

Requests follow the Standard Webhooks convention: headers ``webhook-id`` (the message id, to
deduplicate), ``webhook-timestamp`` (Unix seconds) and ``webhook-signature``:
``v1,`` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")), where the key is the base64 part
of the provider's ``whsec_…`` secret. Only ``https://`` URLs are ever called, without following
redirects.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from registry.models import DeliveryState, Message, Webhook
from registry.services.messages import WEBHOOK_SECRET_PREFIX, message_body

# A claimed message is not claimed again for this long, even if its worker died mid-send.
LEASE = timedelta(minutes=5)

# (url, body, headers, timeout in seconds) -> HTTP status; raises OSError on network errors.
Sender = Callable[[str, bytes, dict[str, str], float], int]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # a redirect is a failure: it could lead to a plain-http URL


_opener = urllib.request.build_opener(_NoRedirect)


def http_sender(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST with urllib; refuses anything but https://."""
    if not url.startswith("https://"):
        raise ValueError("webhooks are only delivered to https:// URLs")
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with _opener.open(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def signing_key(secret: str) -> bytes:
    """The HMAC key: the base64 part of a ``whsec_…`` secret, decoded."""
    return base64.b64decode(secret.removeprefix(WEBHOOK_SECRET_PREFIX))


def sign(secret: str, message_id: str, sent_at: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one request."""
    signed = f"{message_id}.{sent_at}.".encode() + body
    digest = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def backoff(attempts: int) -> timedelta:
    """How long to wait after the ``attempts``-th failure: base * 2^(attempts-1), capped."""
    seconds = settings.WEBHOOK_BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, settings.WEBHOOK_BACKOFF_MAX_SECONDS))


def _live_webhook():
    return Webhook.objects.live().filter(provider=OuterRef("provider"))


@transaction.atomic
def webhook_claim_due(*, now: datetime, limit: int = 100) -> list[int]:
    """Lease up to ``limit`` messages due for delivery to a live webhook; returns their ids."""
    due = (
        Message.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(
            Exists(_live_webhook()),
            delivery_state=DeliveryState.PENDING,
            acked_at__isnull=True,
            next_delivery_at__lte=now,
        )
        .order_by("next_delivery_at", "id")
    )
    ids = list(due.values_list("pk", flat=True)[:limit])
    Message.objects.filter(pk__in=ids).update(next_delivery_at=now + LEASE)
    return ids


@transaction.atomic
def webhook_record_attempt(
    *, message_id: int, webhook: Webhook, delivered: bool, error: str, now: datetime
) -> Message:
    """Record one delivery attempt: delivered, or scheduled again after a backoff, or abandoned."""
    message = Message.objects.select_for_update().get(pk=message_id)
    message.delivery_attempts += 1
    if delivered:
        message.delivery_state = DeliveryState.DELIVERED
        message.delivered_at = now
        message.next_delivery_at = None
        message.last_delivery_error = ""
        Webhook.objects.filter(pk=webhook.pk).update(last_success_at=now)
    else:
        message.last_delivery_error = error[:200]
        if message.delivery_attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
            message.delivery_state = DeliveryState.ABANDONED
            message.next_delivery_at = None
        else:
            message.next_delivery_at = now + backoff(message.delivery_attempts)
        Webhook.objects.filter(pk=webhook.pk).update(last_failure_at=now)
    message.save(
        update_fields=[
            "delivery_attempts",
            "delivery_state",
            "delivered_at",
            "next_delivery_at",
            "last_delivery_error",
        ]
    )
    return message


@dataclass
class DeliveryReport:
    """What one run of the worker did."""

    delivered: int = 0
    failed: int = 0
    abandoned: int = 0

    @property
    def attempted(self) -> int:
        return self.delivered + self.failed + self.abandoned


def _send(message: Message, webhook: Webhook, sender: Sender, now: datetime) -> tuple[bool, str]:
    body = json.dumps(message_body(message), separators=(",", ":"), sort_keys=True).encode()
    sent_at = int(now.timestamp())
    message_id = str(message.pk)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "vault-registry-webhooks/1",
        "webhook-id": message_id,
        "webhook-timestamp": str(sent_at),
        "webhook-signature": sign(webhook.secret, message_id, sent_at, body),
    }
    try:
        status = sender(webhook.url, body, headers, float(settings.WEBHOOK_TIMEOUT_SECONDS))
    except (OSError, ValueError) as exc:  # network errors, timeouts, refused URLs
        return False, f"{type(exc).__name__}: {exc}"
    if 200 <= status < 300:
        return True, ""
    return False, f"HTTP {status}"


def deliver_webhooks(
    *,
    sender: Sender | None = None,
    now: datetime | None = None,
    limit: int = 100,
    on_progress: Callable[[DeliveryReport], None] | None = None,
) -> DeliveryReport:
    """Deliver every due message once (one batch of ``limit`` at a time); returns the counts.

    ``sender`` is ``http_sender`` unless a test injects another.
    """
    sender = sender or http_sender
    report = DeliveryReport()
    claimed_at = now or timezone.now()
    while True:
        ids = webhook_claim_due(now=claimed_at, limit=limit)
        if not ids:
            return report
        messages = Message.objects.filter(pk__in=ids).order_by("id")
        webhooks = {
            hook.provider_id: hook
            for hook in Webhook.objects.live().filter(
                provider_id__in={m.provider_id for m in messages}
            )
        }
        for message in messages:
            webhook = webhooks.get(message.provider_id)
            if webhook is None:  # removed since the claim: the poll queue keeps the message
                continue
            sent_now = now or timezone.now()
            delivered, error = _send(message, webhook, sender, sent_now)
            recorded = webhook_record_attempt(
                message_id=message.pk,
                webhook=webhook,
                delivered=delivered,
                error=error,
                now=sent_now,
            )
            if delivered:
                report.delivered += 1
            elif recorded.delivery_state == DeliveryState.ABANDONED:
                report.abandoned += 1
            else:
                report.failed += 1
        if on_progress is not None:
            on_progress(report)
