"""Notifications that cannot be lost: a per-organisation queue filled in the same transaction as
the change it reports (transactional outbox), read like EPP's poll queue or pushed to a webhook.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from registry.models.organisations import Provider


class MessageKind(models.TextChoices):
    """What a message tells its provider; the ``kind`` member of its body."""

    TRANSFER_REQUESTED = "transfer.requested", _("a transfer of one of your vaults was requested")
    TRANSFER_APPROVED = "transfer.approved", _("your transfer request was approved")
    TRANSFER_REJECTED = "transfer.rejected", _("your transfer request was rejected")
    TRANSFER_CANCELLED = "transfer.cancelled", _("a transfer was cancelled")
    TRANSFER_COMPLETED = "transfer.completed", _("a vault moved: it routes to its new provider")
    TRANSFER_CODE_ISSUED = "transfer_code.issued", _("a transfer code was issued")
    CERTIFICATE_EXPIRING = "certificate.expiring", _("a certificate expires within 30 days")


class DeliveryState(models.TextChoices):
    """Where a message's webhook delivery stands."""

    PENDING = "pending", _("pending")
    DELIVERED = "delivered", _("delivered")
    ABANDONED = "abandoned", _("abandoned after the last retry")


class Message(models.Model):
    """One notification in a provider's queue; acknowledged by the provider, never deleted.

    The ``id`` is the deduplication key a receiver uses: a webhook may deliver a message more
    than once (at least once), always with the same id.
    """

    provider = models.ForeignKey(
        Provider, verbose_name=_("provider"), on_delete=models.PROTECT, related_name="messages"
    )
    kind = models.CharField(_("kind"), max_length=40, choices=MessageKind.choices)
    payload = models.JSONField(_("data"), default=dict)
    dedup_key = models.CharField(
        _("deduplication key"),
        max_length=100,
        blank=True,
        help_text=_("Set for events that must be queued only once."),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    acked_at = models.DateTimeField(_("acknowledged at"), null=True, blank=True)
    # Webhook delivery, retried with exponential backoff.
    delivery_state = models.CharField(
        _("delivery state"),
        max_length=10,
        choices=DeliveryState.choices,
        default=DeliveryState.PENDING,
    )
    delivery_attempts = models.PositiveSmallIntegerField(_("delivery attempts"), default=0)
    next_delivery_at = models.DateTimeField(_("next delivery at"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    last_delivery_error = models.CharField(_("last delivery error"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["id"]
        indexes = [
            models.Index(fields=["provider", "acked_at", "id"], name="registry_message_queue_idx"),
            models.Index(
                fields=["delivery_state", "next_delivery_at"], name="registry_message_due_idx"
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "dedup_key"],
                condition=~Q(dedup_key=""),
                name="%(app_label)s_%(class)s_unique_dedup_key",
            ),
            models.CheckConstraint(
                condition=Q(delivery_state__in=DeliveryState.values),
                name="%(app_label)s_%(class)s_delivery_state_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind} for {self.provider_id}"


class WebhookQuerySet(models.QuerySet):
    def live(self) -> WebhookQuerySet:
        """Webhooks not retired: at most one per provider."""
        return self.filter(removed_at__isnull=True)


class Webhook(models.Model):
    """Where a provider wants its messages pushed, and the secret that signs them.

    The secret signs with HMAC-SHA256, so it is kept as it is (a hash could not sign); it is
    shown once at registration and never again, nor in the admin. At most one live webhook per
    provider: registering a new one retires the old one.
    """

    provider = models.ForeignKey(
        Provider, verbose_name=_("provider"), on_delete=models.PROTECT, related_name="webhooks"
    )
    url = models.URLField(_("URL"), max_length=500)
    secret = models.CharField(_("secret"), max_length=100, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    removed_at = models.DateTimeField(_("removed at"), null=True, blank=True)
    last_success_at = models.DateTimeField(_("last success at"), null=True, blank=True)
    last_failure_at = models.DateTimeField(_("last failure at"), null=True, blank=True)

    objects = WebhookQuerySet.as_manager()

    class Meta:
        verbose_name = _("webhook")
        verbose_name_plural = _("webhooks")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider"],
                condition=Q(removed_at__isnull=True),
                name="%(app_label)s_%(class)s_one_live_per_provider",
            ),
            models.CheckConstraint(
                condition=Q(url__startswith="https://"), name="%(app_label)s_%(class)s_https_only"
            ),
        ]

    def __str__(self) -> str:
        return self.url
