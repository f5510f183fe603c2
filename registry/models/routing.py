"""What routing is made of: vaults, and the endpoints and certificates of their providers."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from registry.models.organisations import Provider, validate_string_list


def validate_transport_profile(value: str) -> None:
    if value not in settings.VAULT_TRANSPORT_PROFILES:
        raise ValidationError(
            _("Unknown transport profile; known: %(known)s."),
            code="unknown_transport_profile",
            params={"known": ", ".join(settings.VAULT_TRANSPORT_PROFILES)},
        )


def validate_https(value: str) -> None:
    if not value.startswith("https://"):
        raise ValidationError(_("Delivery endpoints must use https://."), code="not_https")


class EndpointQuerySet(models.QuerySet):
    def active(self, at: datetime | None = None) -> EndpointQuerySet:
        """Published, started and not expired at ``at`` (now by default)."""
        at = at or timezone.now()
        return self.filter(
            Q(deactivated_at__isnull=True) | Q(deactivated_at__gt=at),
            Q(expires_at__isnull=True) | Q(expires_at__gt=at),
            activates_at__lte=at,
        )


class Endpoint(models.Model):
    """A provider's delivery address for one transport profile."""

    id = models.UUIDField(_("identifier"), primary_key=True, default=uuid.uuid4, editable=False)
    provider = models.ForeignKey(
        Provider, verbose_name=_("provider"), on_delete=models.PROTECT, related_name="endpoints"
    )
    transport_profile = models.CharField(
        _("transport profile"), max_length=50, validators=[validate_transport_profile]
    )
    url = models.URLField(_("URL"), max_length=500, validators=[validate_https])
    document_types = models.JSONField(
        _("document types"), default=list, blank=True, validators=[validate_string_list]
    )
    activates_at = models.DateTimeField(_("activates at"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    deactivated_at = models.DateTimeField(_("deactivated at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    objects = EndpointQuerySet.as_manager()

    class Meta:
        verbose_name = _("endpoint")
        verbose_name_plural = _("endpoints")
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(url__startswith="https://"), name="%(app_label)s_%(class)s_https_only"
            ),
            models.CheckConstraint(
                condition=Q(expires_at__isnull=True) | Q(expires_at__gt=models.F("activates_at")),
                name="%(app_label)s_%(class)s_expires_after_activation",
            ),
            models.UniqueConstraint(
                fields=["provider", "transport_profile", "url"],
                condition=Q(deactivated_at__isnull=True),
                name="%(app_label)s_%(class)s_unique_live_url",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.transport_profile} {self.url}"

    def clean(self) -> None:
        types = self.document_types if isinstance(self.document_types, list) else []
        unknown = [kind for kind in types if kind not in settings.VAULT_DOCUMENT_TYPES]
        if unknown:
            raise ValidationError(
                {
                    "document_types": ValidationError(
                        _("Unknown document types %(unknown)s; known: %(known)s."),
                        code="unknown_document_type",
                        params={
                            "unknown": ", ".join(map(str, unknown)),
                            "known": ", ".join(settings.VAULT_DOCUMENT_TYPES),
                        },
                    )
                }
            )
        # The expires_after_activation constraint, checked before the INSERT can fail on it.
        if (
            self.expires_at is not None
            and self.activates_at
            and self.expires_at <= self.activates_at
        ):
            raise ValidationError(
                {
                    "expires_at": ValidationError(
                        _("An endpoint must expire after it activates."),
                        code="expires_before_activation",
                    )
                }
            )


class CertificateUse(models.TextChoices):
    ENCRYPTION = "encryption", _("document encryption")
    SIGNING = "signing", _("signing")
    TLS = "tls", _("TLS")


class CertificateQuerySet(models.QuerySet):
    def valid(self, at: datetime | None = None) -> CertificateQuerySet:
        """Not retired and inside their validity window at ``at`` (now by default)."""
        at = at or timezone.now()
        return self.filter(
            Q(retired_at__isnull=True) | Q(retired_at__gt=at),
            not_before__lte=at,
            not_after__gt=at,
        )


class Certificate(models.Model):
    """An X.509 certificate a provider published, with what the registry checked in it."""

    id = models.UUIDField(_("identifier"), primary_key=True, default=uuid.uuid4, editable=False)
    provider = models.ForeignKey(
        Provider, verbose_name=_("provider"), on_delete=models.PROTECT, related_name="certificates"
    )
    use = models.CharField(_("use"), max_length=12, choices=CertificateUse.choices)
    pem = models.TextField(_("PEM"))
    fingerprint_sha256 = models.CharField(_("SHA-256 fingerprint"), max_length=64)
    subject = models.CharField(_("subject"), max_length=500)
    issuer = models.CharField(_("certificate issuer"), max_length=500)
    serial_number = models.CharField(_("serial number"), max_length=100)
    not_before = models.DateTimeField(_("valid from"))
    not_after = models.DateTimeField(_("valid until"))
    key_type = models.CharField(_("key type"), max_length=20)
    key_size = models.PositiveIntegerField(_("key size"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    retired_at = models.DateTimeField(_("retired at"), null=True, blank=True)

    objects = CertificateQuerySet.as_manager()

    class Meta:
        verbose_name = _("certificate")
        verbose_name_plural = _("certificates")
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "use", "fingerprint_sha256"],
                condition=Q(retired_at__isnull=True),
                name="%(app_label)s_%(class)s_unique_live_fingerprint",
            ),
            models.CheckConstraint(
                condition=Q(not_after__gt=models.F("not_before")),
                name="%(app_label)s_%(class)s_validity_window",
            ),
            models.CheckConstraint(
                condition=Q(use__in=CertificateUse.values), name="%(app_label)s_%(class)s_use_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.use} {self.fingerprint_sha256[:16]}… ({self.subject})"


class VaultStatus(models.TextChoices):
    ACTIVE = "active", _("active")
    CLOSED = "closed", _("closed")


class VaultQuerySet(models.QuerySet):
    def open(self) -> VaultQuerySet:
        return self.exclude(status=VaultStatus.CLOSED)


class Vault(models.Model):
    """A vault number and the provider hosting it today. Closed vaults stay as tombstones."""

    number = models.CharField(_("number"), max_length=20, primary_key=True)
    provider = models.ForeignKey(
        Provider, verbose_name=_("provider"), on_delete=models.PROTECT, related_name="vaults"
    )
    status = models.CharField(
        _("status"), max_length=10, choices=VaultStatus.choices, default=VaultStatus.ACTIVE
    )
    client_hold = models.BooleanField(
        _("client hold"), default=False, help_text=_("The provider stops delivery.")
    )
    server_hold = models.BooleanField(
        _("server hold"), default=False, help_text=_("The registry stops delivery.")
    )
    client_transfer_prohibited = models.BooleanField(
        _("moves blocked by the holder"), default=False
    )
    registry_lock = models.BooleanField(_("registry lock"), default=False)
    pending_transfer = models.BooleanField(_("pending transfer"), default=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    last_log_index = models.BigIntegerField(
        _("last log index"), null=True, blank=True, editable=False
    )
    # The last move, kept on the row so that lookups name the previous provider during the grace
    # period and the post-transfer lock is checked without another query.
    previous_provider = models.ForeignKey(
        Provider,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("previous provider"),
    )
    transferred_at = models.DateTimeField(
        _("transferred at"), null=True, blank=True, editable=False
    )

    objects = VaultQuerySet.as_manager()

    class Meta:
        verbose_name = _("vault")
        verbose_name_plural = _("vaults")
        ordering = ["created_at", "number"]
        indexes = [models.Index(fields=["provider", "number"], name="registry_vault_provider_idx")]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(status=VaultStatus.CLOSED, closed_at__isnull=False)
                    | Q(status=VaultStatus.ACTIVE, closed_at__isnull=True)
                ),
                name="%(app_label)s_%(class)s_closed_at_iff_closed",
            ),
            models.CheckConstraint(
                condition=Q(number__regex=r"^[A-Z]{2}[0-9]{2}[A-Z][A-Z0-9]{3}[0-9]{12}$"),
                name="%(app_label)s_%(class)s_number_format",
            ),
            models.CheckConstraint(
                condition=Q(previous_provider__isnull=True, transferred_at__isnull=True)
                | Q(previous_provider__isnull=False, transferred_at__isnull=False),
                name="%(app_label)s_%(class)s_moved_together",
            ),
        ]

    def __str__(self) -> str:
        from registry.numbers import format_display

        return format_display(self.number)

    @property
    def flags(self) -> list[str]:
        return [name for name in VAULT_FLAGS if getattr(self, name)]


VAULT_FLAGS = (
    "client_hold",
    "server_hold",
    "client_transfer_prohibited",
    "registry_lock",
    "pending_transfer",
)
