"""Providers and issuers: the organisations of the federation, with their status history."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from stdnum.fr import siren


class OrganisationStatus(models.TextChoices):
    APPLIED = "applied", _("applied")
    ACTIVE = "active", _("active")
    REJECTED = "rejected", _("rejected")
    SUSPENDED = "suspended", _("suspended")
    WITHDRAWN = "withdrawn", _("withdrawn")


# The only status changes there are (DESIGN.md §3); rejected and withdrawn are terminal.
STATUS_TRANSITIONS: dict[str, frozenset[str]] = {
    OrganisationStatus.APPLIED: frozenset(
        {OrganisationStatus.ACTIVE, OrganisationStatus.REJECTED, OrganisationStatus.WITHDRAWN}
    ),
    OrganisationStatus.ACTIVE: frozenset(
        {OrganisationStatus.SUSPENDED, OrganisationStatus.WITHDRAWN}
    ),
    OrganisationStatus.SUSPENDED: frozenset(
        {OrganisationStatus.ACTIVE, OrganisationStatus.WITHDRAWN}
    ),
    OrganisationStatus.REJECTED: frozenset(),
    OrganisationStatus.WITHDRAWN: frozenset(),
}

# Statuses in which an organisation holds its legal identifier: a rejected or withdrawn one
# leaves it free for a new application.
LIVE_STATUSES = [
    OrganisationStatus.APPLIED,
    OrganisationStatus.ACTIVE,
    OrganisationStatus.SUSPENDED,
]


class LegalIdScheme(models.TextChoices):
    SIREN = "siren", "SIREN"
    LEI = "lei", "LEI"
    OTHER = "other", _("other")


class Purpose(models.TextChoices):
    """Why an issuer resolves vault numbers; every lookup is attributable to one."""

    BANK_STATEMENT = "bank_statement", _("bank statements")
    PAYSLIP = "payslip", _("payslips")
    INVOICE = "invoice", _("invoices and bills")
    TAX_NOTICE = "tax_notice", _("tax notices")
    INSURANCE = "insurance", _("insurance documents")
    OTHER = "other", _("other documents")


def validate_purposes(value: object) -> None:
    if not isinstance(value, list) or not all(item in Purpose.values for item in value):
        raise ValidationError(
            _("Purposes must be a list drawn from: %(choices)s."),
            code="invalid_purposes",
            params={"choices": ", ".join(Purpose.values)},
        )


def validate_string_list(value: object) -> None:
    if not isinstance(value, list) or not all(
        isinstance(item, str) and 0 < len(item) <= 100 for item in value
    ):
        raise ValidationError(_("Expected a list of short strings."), code="invalid_list")


class Organisation(models.Model):
    """What providers and issuers share: a legal identity, contacts and a status."""

    id = models.UUIDField(_("identifier"), primary_key=True, default=uuid.uuid4, editable=False)
    legal_name = models.CharField(_("legal name"), max_length=200)
    legal_id_scheme = models.CharField(
        _("legal identifier scheme"),
        max_length=10,
        choices=LegalIdScheme.choices,
        default=LegalIdScheme.SIREN,
    )
    legal_id = models.CharField(_("legal identifier"), max_length=40)
    contact_name = models.CharField(_("contact name"), max_length=200, blank=True)
    technical_email = models.EmailField(_("technical contact"))
    security_email = models.EmailField(_("security contact"))
    status = models.CharField(
        _("status"),
        max_length=10,
        choices=OrganisationStatus.choices,
        default=OrganisationStatus.APPLIED,
    )
    status_changed_at = models.DateTimeField(_("status changed at"), default=timezone.now)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        abstract = True
        ordering = ["legal_name"]

    def __str__(self) -> str:
        return self.legal_name

    def clean(self) -> None:
        if self.legal_id_scheme == LegalIdScheme.SIREN:
            if not siren.is_valid(self.legal_id):
                raise ValidationError(
                    {
                        "legal_id": ValidationError(
                            _("This is not a valid SIREN."), code="invalid_siren"
                        )
                    }
                )
            self.legal_id = siren.compact(self.legal_id)

    @property
    def is_active(self) -> bool:
        return self.status == OrganisationStatus.ACTIVE


class Provider(Organisation):
    """A vault provider: hosts vaults, publishes endpoints and certificates."""

    certifications = models.JSONField(
        _("certifications claimed"),
        default=list,
        blank=True,
        validators=[validate_string_list],
        help_text=_("e.g. NF Z42-020"),
    )
    last_log_index = models.BigIntegerField(
        _("last log index"), null=True, blank=True, editable=False
    )

    class Meta(Organisation.Meta):
        verbose_name = _("provider")
        verbose_name_plural = _("providers")
        constraints = [
            models.UniqueConstraint(
                fields=["legal_id_scheme", "legal_id"],
                condition=models.Q(status__in=LIVE_STATUSES),
                name="%(app_label)s_%(class)s_unique_live_legal_id",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=OrganisationStatus.values),
                name="%(app_label)s_%(class)s_status_valid",
            ),
        ]


class Issuer(Organisation):
    """A sender of documents (bank, utility, employer, administration) that resolves numbers."""

    purposes = models.JSONField(
        _("allowed purposes"), default=list, blank=True, validators=[validate_purposes]
    )
    # Rate limits per token, in numbers per minute; empty: the setting's default
    # (VAULT_RATE_LOOKUP_PER_MINUTE, VAULT_RATE_PLAN_NUMBERS_PER_MINUTE). registry.ratelimit.
    rate_lookups_per_minute = models.PositiveIntegerField(
        _("lookups per minute and token"), null=True, blank=True
    )
    rate_plan_numbers_per_minute = models.PositiveIntegerField(
        _("plan numbers per minute and token"), null=True, blank=True
    )
    # Set when its share of unknown numbers looked like enumeration (registry.services.usage).
    enumeration_suspected_at = models.DateTimeField(
        _("enumeration suspected at"), null=True, blank=True
    )

    class Meta(Organisation.Meta):
        verbose_name = _("issuer")
        verbose_name_plural = _("issuers")
        constraints = [
            models.UniqueConstraint(
                fields=["legal_id_scheme", "legal_id"],
                condition=models.Q(status__in=LIVE_STATUSES),
                name="%(app_label)s_%(class)s_unique_live_legal_id",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=OrganisationStatus.values),
                name="%(app_label)s_%(class)s_status_valid",
            ),
        ]


class StatusChange(models.Model):
    """One status change: who, when, why, and from when it holds (ETSI TS 119 612 style)."""

    from_status = models.CharField(
        _("previous status"), max_length=10, choices=OrganisationStatus.choices, blank=True
    )
    to_status = models.CharField(_("new status"), max_length=10, choices=OrganisationStatus.choices)
    reason = models.TextField(_("reason"))
    actor = models.CharField(_("actor"), max_length=200)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("actor's account"),
    )
    effective_at = models.DateTimeField(_("starting time"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        abstract = True
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.from_status or '∅'} → {self.to_status}"


class ProviderStatusChange(StatusChange):
    provider = models.ForeignKey(
        Provider,
        verbose_name=_("provider"),
        on_delete=models.PROTECT,
        related_name="status_changes",
    )

    class Meta(StatusChange.Meta):
        verbose_name = _("provider status change")
        verbose_name_plural = _("provider status changes")


class IssuerStatusChange(StatusChange):
    issuer = models.ForeignKey(
        Issuer, verbose_name=_("issuer"), on_delete=models.PROTECT, related_name="status_changes"
    )

    class Meta(StatusChange.Meta):
        verbose_name = _("issuer status change")
        verbose_name_plural = _("issuer status changes")


class IssuerUsage(models.Model):
    """What one issuer asked in one minute for one purpose: aggregated by the workers and
    flushed here (registry.usage), never one row per lookup. ``lookups`` counts requests (a
    lookup or a plan), ``numbers`` the numbers they asked, ``unknown`` those no vault has."""

    issuer = models.ForeignKey(
        Issuer, verbose_name=_("issuer"), on_delete=models.PROTECT, related_name="usage"
    )
    minute = models.DateTimeField(_("minute"), db_index=True)
    purpose = models.CharField(_("purpose"), max_length=40, blank=True)
    lookups = models.PositiveBigIntegerField(_("requests"), default=0)
    numbers = models.PositiveBigIntegerField(_("numbers asked"), default=0)
    unknown = models.PositiveBigIntegerField(_("unknown numbers"), default=0)

    class Meta:
        verbose_name = _("issuer usage")
        verbose_name_plural = _("issuer usage")
        ordering = ["-minute", "issuer_id", "purpose"]
        constraints = [
            models.UniqueConstraint(
                fields=["issuer", "minute", "purpose"], name="%(app_label)s_%(class)s_unique_minute"
            )
        ]

    def __str__(self) -> str:
        return f"{self.issuer_id} {self.minute:%Y-%m-%d %H:%M} {self.purpose or '-'}"
