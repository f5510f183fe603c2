"""Portability (DESIGN.md §5): the holder's transfer codes and the transfers they authorise."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from registry.models.organisations import Provider
from registry.models.routing import Vault


class TransferCodeState(models.TextChoices):
    """Where a code stands; derived from its timestamps, never stored."""

    ACTIVE = "active", _("active")
    EXPIRED = "expired", _("expired")
    LOCKED = "locked", _("locked after too many wrong attempts")
    USED = "used", _("used")
    VOIDED = "voided", _("voided")


class CodeVoidReason(models.TextChoices):
    """Why a code stopped being usable before it was used."""

    REPLACED = "replaced", _("a new code was issued")
    REVOKED = "revoked", _("revoked by the holder's provider")
    TRANSFERRED = "transferred", _("the vault moved")
    CLOSED = "closed", _("the vault was closed")


class TransferCode(models.Model):
    """A code the holder got from their provider to authorise one move of one vault.

    Only a salted HMAC of the code is kept (``registry.transfer_codes``), and even that is wiped
    once the code can no longer be used. At most one usable (not used, not voided) code per vault.
    """

    id = models.UUIDField(_("identifier"), primary_key=True, default=uuid.uuid4, editable=False)
    vault = models.ForeignKey(
        Vault, verbose_name=_("vault"), on_delete=models.PROTECT, related_name="transfer_codes"
    )
    provider = models.ForeignKey(
        Provider,
        verbose_name=_("provider"),
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("The provider that hosted the vault and asked for the code."),
    )
    salt = models.BinaryField(_("salt"), max_length=32, editable=False)
    code_hash = models.CharField(_("code hash"), max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires at"))
    failed_attempts = models.PositiveSmallIntegerField(_("failed attempts"), default=0)
    locked_at = models.DateTimeField(_("locked at"), null=True, blank=True)
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)
    voided_at = models.DateTimeField(_("voided at"), null=True, blank=True)
    void_reason = models.CharField(
        _("void reason"), max_length=12, choices=CodeVoidReason.choices, blank=True
    )
    destroyed_at = models.DateTimeField(
        _("destroyed at"), null=True, blank=True, help_text=_("When the hash was wiped.")
    )

    class Meta:
        verbose_name = _("transfer code")
        verbose_name_plural = _("transfer codes")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["vault"],
                condition=Q(used_at__isnull=True, voided_at__isnull=True),
                name="%(app_label)s_%(class)s_one_usable_per_vault",
            ),
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("created_at")),
                name="%(app_label)s_%(class)s_expires_after_creation",
            ),
            models.CheckConstraint(
                condition=Q(voided_at__isnull=True, void_reason="")
                | Q(voided_at__isnull=False, void_reason__in=CodeVoidReason.values),
                name="%(app_label)s_%(class)s_void_reason_iff_voided",
            ),
        ]

    def __str__(self) -> str:
        return f"transfer code for {self.vault_id} ({self.state(timezone.now())})"

    def state(self, now: datetime) -> TransferCodeState:
        if self.voided_at is not None:
            return TransferCodeState.VOIDED
        if self.used_at is not None:
            return TransferCodeState.USED
        if self.locked_at is not None:
            return TransferCodeState.LOCKED
        if self.expires_at <= now:
            return TransferCodeState.EXPIRED
        return TransferCodeState.ACTIVE


class TransferState(models.TextChoices):
    """EPP (RFC 5730) transfer outcomes; ``pending`` is the only non-terminal state."""

    PENDING = "pending", _("pending")
    CLIENT_APPROVED = "client_approved", _("approved by the losing provider")
    CLIENT_REJECTED = "client_rejected", _("rejected by the losing provider")
    CLIENT_CANCELLED = "client_cancelled", _("cancelled by the gaining provider")
    SERVER_APPROVED = "server_approved", _("approved by the registry (deadline passed)")
    SERVER_CANCELLED = "server_cancelled", _("cancelled by the registry")


class RejectionReason(models.TextChoices):
    """The only grounds on which a losing provider may refuse a move."""

    FRAUD = "fraud", _("suspected fraud")
    HOLDER_OBJECTION = "holder_objection", _("the holder objects")
    LEGAL_HOLD = "legal_hold", _("legal hold")
    DISPUTE = "dispute", _("dispute")


class ServerCancelCause(models.TextChoices):
    """Why the registry cancelled a pending transfer."""

    ADMIN = "admin", _("cancelled by a federation admin")
    REGISTRY_LOCK = "registry_lock", _("the vault was locked by the registry")
    VAULT_CLOSED = "vault_closed", _("the vault was closed")
    GAINING_PROVIDER_NOT_ACTIVE = (
        "gaining_provider_not_active",
        _("the gaining provider is no longer active"),
    )


class TransferSide(models.TextChoices):
    """Who acted on a transfer, as its timeline shows it."""

    GAINING = "gaining_provider", _("gaining provider")
    LOSING = "losing_provider", _("losing provider")
    REGISTRY = "registry", _("registry")


OUTCOME_SIDE = {
    TransferState.CLIENT_APPROVED: TransferSide.LOSING,
    TransferState.CLIENT_REJECTED: TransferSide.LOSING,
    TransferState.CLIENT_CANCELLED: TransferSide.GAINING,
    TransferState.SERVER_APPROVED: TransferSide.REGISTRY,
    TransferState.SERVER_CANCELLED: TransferSide.REGISTRY,
}


class TransferQuerySet(models.QuerySet):
    def pending(self) -> TransferQuerySet:
        return self.filter(state=TransferState.PENDING)

    def overdue(self, at: datetime) -> TransferQuerySet:
        """Pending past their deadline: the registry approves them (``server_approved``)."""
        return self.filter(state=TransferState.PENDING, deadline__lte=at)

    def involving(self, provider: Provider) -> TransferQuerySet:
        """Those a provider may see: it is the gaining or the losing side."""
        return self.filter(Q(gaining_provider=provider) | Q(losing_provider=provider))


class Transfer(models.Model):
    """One request to move a vault to another provider, and its outcome (DESIGN.md §5).

    The database holds the rule that matters most: at most one pending transfer per vault.
    """

    id = models.UUIDField(_("identifier"), primary_key=True, default=uuid.uuid4, editable=False)
    vault = models.ForeignKey(
        Vault, verbose_name=_("vault"), on_delete=models.PROTECT, related_name="transfers"
    )
    losing_provider = models.ForeignKey(
        Provider,
        on_delete=models.PROTECT,
        related_name="outgoing_transfers",
        verbose_name=_("losing provider"),
    )
    gaining_provider = models.ForeignKey(
        Provider,
        on_delete=models.PROTECT,
        related_name="incoming_transfers",
        verbose_name=_("gaining provider"),
    )
    code = models.ForeignKey(
        TransferCode,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("transfer code"),
    )
    consent_reference = models.CharField(
        _("consent reference"),
        max_length=200,
        help_text=_("The gaining provider's reference of the holder's consent."),
    )
    state = models.CharField(
        _("state"), max_length=16, choices=TransferState.choices, default=TransferState.PENDING
    )
    requested_at = models.DateTimeField(_("requested at"), default=timezone.now)
    deadline = models.DateTimeField(
        _("deadline"),
        help_text=_("When the registry approves it if the losing provider has not answered."),
    )
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    outcome_reason = models.CharField(
        _("outcome reason"),
        max_length=30,
        blank=True,
        help_text=_("Rejection reason (client_rejected) or cause (server_cancelled)."),
    )
    outcome_note = models.TextField(_("outcome note"), blank=True, max_length=2000)
    log_sequence = models.BigIntegerField(
        _("log index"),
        null=True,
        blank=True,
        editable=False,
        help_text=_("Log entry of the outcome."),
    )

    objects = TransferQuerySet.as_manager()

    class Meta:
        verbose_name = _("transfer")
        verbose_name_plural = _("transfers")
        ordering = ["-requested_at", "id"]
        indexes = [
            models.Index(fields=["state", "deadline"], name="registry_transfer_due_idx"),
            models.Index(fields=["vault", "requested_at"], name="registry_transfer_vault_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["vault"],
                condition=Q(state=TransferState.PENDING),
                name="%(app_label)s_%(class)s_one_pending_per_vault",
            ),
            models.CheckConstraint(
                condition=Q(state__in=TransferState.values),
                name="%(app_label)s_%(class)s_state_valid",
            ),
            models.CheckConstraint(
                condition=~Q(losing_provider=models.F("gaining_provider")),
                name="%(app_label)s_%(class)s_two_providers",
            ),
            models.CheckConstraint(
                condition=Q(state=TransferState.PENDING, resolved_at__isnull=True)
                | (~Q(state=TransferState.PENDING) & Q(resolved_at__isnull=False)),
                name="%(app_label)s_%(class)s_resolved_iff_not_pending",
            ),
            models.CheckConstraint(
                condition=~Q(state=TransferState.CLIENT_REJECTED)
                | Q(outcome_reason__in=RejectionReason.values),
                name="%(app_label)s_%(class)s_rejection_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"transfer of {self.vault_id} ({self.state})"

    @property
    def is_pending(self) -> bool:
        return self.state == TransferState.PENDING

    def side_of(self, provider: Provider) -> TransferSide | None:
        if provider.pk == self.gaining_provider_id:
            return TransferSide.GAINING
        if provider.pk == self.losing_provider_id:
            return TransferSide.LOSING
        return None

    def timeline(self) -> list[dict[str, object]]:
        """What happened, in order: the request, then the outcome once there is one."""
        events: list[dict[str, object]] = [
            {"event": "requested", "at": self.requested_at, "by": TransferSide.GAINING.value}
        ]
        if self.resolved_at is not None:
            events.append(
                {
                    "event": self.state,
                    "at": self.resolved_at,
                    "by": OUTCOME_SIDE[TransferState(self.state)].value,
                    "reason": self.outcome_reason,
                }
            )
        return events
