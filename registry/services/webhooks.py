"""Push queued messages to the providers' webhooks: signed, retried, at least once.

A worker (``manage.py deliver_webhooks``) claims due messages, POSTs them outside any
transaction, then records each outcome: delivered, or retried after an exponential backoff kept
in the database (``next_delivery_at``), or abandoned after the last attempt, when the message
stays in the poll queue all the same. Several workers may run at once: a claim leases the
messages (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, then WEBHOOK_LEASE_SECONDS), so each is sent
by one of them; a worker that fails releases what it claimed and did not send at once, and the
lease frees what a killed worker held.

Deliveries to different providers run in parallel (WEBHOOK_CONCURRENCY threads; only the HTTP
requests run there, the database is read and written by the calling thread), so a slow receiver
delays only its own messages. Each delivery has a total time limit, WEBHOOK_TIMEOUT_SECONDS, from
connecting to the answer's status line, however slowly a receiver trickles bytes.

Ordering: one provider's messages are sent one at a time, oldest first. When one fails, the
provider's later messages of the batch are not tried and wait for its retry, so a receiver that
is down does not cost a timeout per message. Retries may still deliver a message after a newer
one (a message abandoned, a newer one delivered): receivers order by the message's ``created_at``
(or its id, which only grows) and deduplicate by ``webhook-id``; the poll queue
(``GET /api/v1/messages``) always answers oldest first.

Requests follow the Standard Webhooks convention: headers ``webhook-id`` (the message id, to
deduplicate), ``webhook-timestamp`` (Unix seconds) and ``webhook-signature``:
``v1,`` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")), where the key is the base64 part
of the provider's ``whsec_…`` secret. Only ``https://`` URLs of public addresses are ever called
(registry.destinations: checked again at each delivery, connecting to the address checked),
without following redirects.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import http.client
import json
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from registry import destinations
from registry.models import DeliveryState, Message, Webhook
from registry.services.messages import WEBHOOK_SECRET_PREFIX, message_body

# (url, body, headers, total time limit in seconds) -> HTTP status; raises OSError on network
# errors and timeouts, ValueError on a refused URL.
Sender = Callable[[str, bytes, dict[str, str], float], int]

logger = logging.getLogger("registry.webhooks")


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to one checked address, naming the host for TLS (SNI, certificate) and Host."""

    def __init__(self, destination: destinations.Destination, address: str, timeout: float):
        context = ssl.create_default_context(cafile=settings.WEBHOOK_CA_FILE or None)
        super().__init__(destination.host, destination.port, timeout=timeout, context=context)
        self._address = address
        self._raw: socket.socket | None = None
        self._tls = context

    def connect(self) -> None:
        self._raw = socket.create_connection((self._address, self.port), self.timeout)
        # The TLS socket takes the descriptor over: keep it before the handshake, so that
        # abort() can reach a handshake that stalls too.
        self.sock = self._tls.wrap_socket(
            self._raw, server_hostname=self.host, do_handshake_on_connect=False
        )
        self.sock.do_handshake()

    def abort(self) -> None:
        """Called from a timer: ends whatever read or write is blocked on the socket."""
        for sock in (self.sock, self._raw):
            if sock is not None:
                with contextlib.suppress(OSError):  # detached or already closed
                    # socket.socket's own shutdown: the descriptor's, not TLS's close_notify
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)


def http_sender(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST to a checked destination, within ``timeout`` seconds in all.

    The URL is checked (and its host resolved) here, at each delivery, and the connection goes
    to an address that passed the check. A timer shuts the socket down when the time is up, so
    a receiver answering one byte at a time cannot hold the worker longer (a socket timeout
    bounds each read, not the whole). Redirects are not followed: a 3xx is a failure.
    """
    destination = destinations.check(url, allow_private=settings.VAULT_WEBHOOK_ALLOW_PRIVATE)
    connection = _PinnedHTTPSConnection(destination, destination.addresses[0], timeout)
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        connection.abort()

    timer = threading.Timer(timeout, expire)
    timer.daemon = True
    timer.start()
    try:
        connection.request("POST", destination.target, body=body, headers=headers)
        return connection.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        if expired.is_set():
            raise TimeoutError(f"no answer within {timeout:g} s") from None
        if isinstance(exc, OSError):
            raise
        raise ConnectionError(f"{type(exc).__name__}: {exc}") from None
    finally:
        timer.cancel()
        connection.close()


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
    lease = timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS)
    Message.objects.filter(pk__in=ids).update(next_delivery_at=now + lease)
    return ids


def webhook_reschedule(*, message_ids: list[int], at: datetime) -> int:
    """Make claimed, unsent messages due again at ``at``: at once when their worker fails, or
    after the retry of the message they queue behind. No attempt is counted."""
    return Message.objects.filter(
        pk__in=message_ids, delivery_state=DeliveryState.PENDING, acked_at__isnull=True
    ).update(next_delivery_at=at)


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
    # Not tried: queued behind a failed message of the same provider, retried with it.
    deferred: int = 0
    # Sent or not, but their outcome could not be recorded (a database error): they stay
    # claimed until their lease ends and are delivered again then (at least once).
    errors: int = 0

    @property
    def attempted(self) -> int:
        return self.delivered + self.failed + self.abandoned


@dataclass(frozen=True, slots=True)
class _Request:
    """One message ready to send: everything the HTTP thread needs, no database access."""

    message_id: int
    webhook: Webhook
    body: bytes
    headers: dict[str, str] = field(hash=False)


def _prepare(message: Message, webhook: Webhook, now: datetime) -> _Request:
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
    return _Request(message.pk, webhook, body, headers)


def _post(request: _Request, sender: Sender) -> tuple[bool, str]:
    timeout = float(settings.WEBHOOK_TIMEOUT_SECONDS)
    try:
        status = sender(request.webhook.url, request.body, request.headers, timeout)
    except (OSError, ValueError) as exc:  # network errors, timeouts, refused destinations
        return False, f"{type(exc).__name__}: {exc}"
    if 200 <= status < 300:
        return True, ""
    return False, f"HTTP {status}"


def _post_in_order(requests: list[_Request], sender: Sender) -> list[tuple[bool, str]]:
    """One provider's messages, oldest first, stopping at the first failure."""
    outcomes = []
    for request in requests:
        outcomes.append(_post(request, sender))
        if not outcomes[-1][0]:
            break
    return outcomes


def deliver_webhooks(
    *,
    sender: Sender | None = None,
    now: datetime | None = None,
    limit: int = 100,
    on_progress: Callable[[DeliveryReport], None] | None = None,
) -> DeliveryReport:
    """Deliver every due message once (one batch of ``limit`` at a time); returns the counts.

    Each batch's providers are served in parallel; outcomes are recorded as each provider's
    requests end. ``sender`` is ``http_sender`` unless a test injects another.
    """
    sender = sender or http_sender
    report = DeliveryReport()
    claimed_at = now or timezone.now()
    while True:
        ids = webhook_claim_due(now=claimed_at, limit=limit)
        if not ids:
            return report
        unrecorded = set(ids)
        pool = ThreadPoolExecutor(max_workers=max(settings.WEBHOOK_CONCURRENCY, 1))
        try:
            _deliver_batch(ids, sender, pool, report, unrecorded, now)
        except BaseException:
            # Whatever was claimed and not recorded is due again at once, not after the lease.
            webhook_reschedule(message_ids=sorted(unrecorded), at=now or timezone.now())
            raise
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        if on_progress is not None:
            on_progress(report)


def _deliver_batch(
    ids: list[int],
    sender: Sender,
    pool: ThreadPoolExecutor,
    report: DeliveryReport,
    unrecorded: set[int],
    now: datetime | None,
) -> None:
    messages = Message.objects.filter(pk__in=ids).order_by("id")
    webhooks = {
        hook.provider_id: hook
        for hook in Webhook.objects.live().filter(provider_id__in={m.provider_id for m in messages})
    }
    prepared_at = now or timezone.now()
    per_provider: dict[object, list[_Request]] = {}
    for message in messages:
        webhook = webhooks.get(message.provider_id)
        if webhook is None:  # removed since the claim: the poll queue keeps the message
            continue
        per_provider.setdefault(message.provider_id, []).append(
            _prepare(message, webhook, prepared_at)
        )
    futures = {
        pool.submit(_post_in_order, requests, sender): requests
        for requests in per_provider.values()
    }
    for future in as_completed(futures):
        requests = futures[future]
        outcomes = future.result()  # a bug in the sender ends the run (its claims released)
        try:
            _record_outcomes(requests, outcomes, report, unrecorded, now)
        except Exception:  # a database error on one provider's records: the others go on
            logger.exception(
                "Webhook outcomes of provider %s not recorded", requests[0].webhook.provider_id
            )
            report.errors += sum(1 for r in requests if r.message_id in unrecorded)
            unrecorded.difference_update(r.message_id for r in requests)


def _record_outcomes(
    requests: list[_Request],
    outcomes: list[tuple[bool, str]],
    report: DeliveryReport,
    unrecorded: set[int],
    now: datetime | None,
) -> None:
    """Record one provider's attempts, and reschedule its messages queued behind a failure."""
    retry_at = None
    for request, (delivered, error) in zip(requests, outcomes, strict=False):
        recorded_now = now or timezone.now()
        recorded = webhook_record_attempt(
            message_id=request.message_id,
            webhook=request.webhook,
            delivered=delivered,
            error=error,
            now=recorded_now,
        )
        unrecorded.discard(request.message_id)
        if delivered:
            report.delivered += 1
        elif recorded.delivery_state == DeliveryState.ABANDONED:
            report.abandoned += 1
            retry_at = recorded_now
        else:
            report.failed += 1
            retry_at = recorded.next_delivery_at
    waiting = [r.message_id for r in requests[len(outcomes) :]]
    if waiting:
        webhook_reschedule(message_ids=waiting, at=retry_at or now or timezone.now())
        unrecorded.difference_update(waiting)
        report.deferred += len(waiting)
