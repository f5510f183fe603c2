"""The append-only log of routing changes, its head, and the audit trail of every write."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class LogEntry(models.Model):
    """One routing-relevant change as RFC 8785 canonical JSON; never updated nor deleted.

    ``sequence`` is gapless from 0 and is the entry's leaf index in the RFC 9162 Merkle tree;
    ``leaf_hash`` is SHA-256(0x00 ‖ body).
    """

    sequence = models.BigIntegerField(_("index"), primary_key=True)
    kind = models.CharField(_("kind"), max_length=40)
    body = models.BinaryField(_("body"))
    leaf_hash = models.BinaryField(_("leaf hash"), max_length=32)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("log entry")
        verbose_name_plural = _("log entries")
        ordering = ["sequence"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(sequence__gte=0),
                name="%(app_label)s_%(class)s_sequence_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.kind}"


class LogHead(models.Model):
    """The single row that serialises appends: its lock orders writers; size is the next index."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    size = models.BigIntegerField(_("size"), default=0)

    class Meta:
        verbose_name = _("log head")
        verbose_name_plural = _("log heads")
        constraints = [
            models.CheckConstraint(condition=models.Q(id=1), name="%(app_label)s_%(class)s_single"),
        ]

    def __str__(self) -> str:
        return f"log of {self.size} entries"


class AuditEvent(models.Model):
    """Who did what to which record, written in the same transaction as the change."""

    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)
    actor = models.CharField(_("actor"), max_length=200)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("actor's account"),
    )
    actor_token = models.ForeignKey(
        "registry.ApiToken",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("actor's token"),
    )
    action = models.CharField(_("action"), max_length=60)
    target_type = models.CharField(_("target type"), max_length=40)
    target_id = models.CharField(_("target identifier"), max_length=64)
    data = models.JSONField(_("data"), default=dict, blank=True)
    log_sequence = models.BigIntegerField(_("log index"), null=True, blank=True)

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["target_type", "target_id"], name="registry_audit_target_idx")
        ]

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.target_type}:{self.target_id}"


class LogKind(models.TextChoices):
    """What a log entry records; the ``kind`` member of its canonical JSON."""

    PROVIDER_STATUS = "provider.status"
    ENDPOINT_PUBLISHED = "endpoint.published"
    ENDPOINT_DEACTIVATED = "endpoint.deactivated"
    CERTIFICATE_PUBLISHED = "certificate.published"
    CERTIFICATE_RETIRED = "certificate.retired"
    VAULT_ALLOCATED = "vault.allocated"
    VAULT_HELD = "vault.held"
    VAULT_RELEASED = "vault.released"
    VAULT_CLOSED = "vault.closed"
    VAULT_REGISTRY_LOCK = "vault.registry_lock"
    VAULT_TRANSFER_PROHIBITED = "vault.transfer_prohibited"
    STATE_SNAPSHOT = "state.snapshot"  # the records of a registry that logged before records
    TRANSFER_REQUESTED = "transfer.requested"
    TRANSFER_COMPLETED = "transfer.completed"
    TRANSFER_REJECTED = "transfer.rejected"
    TRANSFER_CANCELLED = "transfer.cancelled"
