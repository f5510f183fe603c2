"""API tokens: bearer credentials of a provider or an issuer, stored only as a hash."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from registry.models.organisations import Issuer, Provider


class TokenScope(models.TextChoices):
    PROVIDER = "provider", _("provider management")
    LOOKUP = "lookup", _("lookups")


class ApiToken(models.Model):
    """A bearer token. Only the SHA-256 of its value is kept; the value is shown once."""

    id = models.UUIDField(_("identifier"), primary_key=True, default=uuid.uuid4, editable=False)
    provider = models.ForeignKey(
        Provider,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="tokens",
        verbose_name=_("provider"),
    )
    issuer = models.ForeignKey(
        Issuer,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="tokens",
        verbose_name=_("issuer"),
    )
    scope = models.CharField(_("scope"), max_length=10, choices=TokenScope.choices)
    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(
        _("prefix"), max_length=16, help_text=_("First characters, to recognise it.")
    )
    key_hash = models.CharField(_("key hash"), max_length=64, unique=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("created by"),
    )
    expires_at = models.DateTimeField(_("expires at"))
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(scope=TokenScope.PROVIDER, provider__isnull=False, issuer__isnull=True)
                    | Q(scope=TokenScope.LOOKUP, issuer__isnull=False, provider__isnull=True)
                ),
                name="%(app_label)s_%(class)s_scope_matches_owner",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def owner(self) -> Provider | Issuer:
        return self.provider or self.issuer  # type: ignore[return-value]

    def is_usable(self, now=None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and self.expires_at > now
