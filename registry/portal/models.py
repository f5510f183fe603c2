"""Staff accounts of member organisations: a membership with a role, and invitations."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from registry.models import Issuer, Provider


class Role(models.TextChoices):
    """What a member may do: viewers read, operators act, administrators also manage the
    organisation's users and API tokens."""

    ADMINISTRATOR = "administrator", _("administrator")
    OPERATOR = "operator", _("operator")
    VIEWER = "viewer", _("viewer")


# Each role may do what the roles after it may do.
ROLE_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMINISTRATOR: 2}


class OrganisationRef(models.Model):
    """A provider or an issuer, exactly one of them."""

    provider = models.ForeignKey(
        Provider, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    issuer = models.ForeignKey(
        Issuer, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        abstract = True
        constraints = [
            models.CheckConstraint(
                condition=Q(provider__isnull=False, issuer__isnull=True)
                | Q(provider__isnull=True, issuer__isnull=False),
                name="%(app_label)s_%(class)s_one_organisation",
            ),
        ]

    @property
    def organisation(self) -> Provider | Issuer:
        return self.provider or self.issuer  # type: ignore[return-value]

    @property
    def kind(self) -> str:
        return "provider" if self.provider_id else "issuer"


class Membership(OrganisationRef):
    """A person's account at one member organisation, with a role. One organisation per
    account: staff of two organisations have two accounts."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership"
    )
    role = models.CharField(_("role"), max_length=13, choices=Role.choices)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta(OrganisationRef.Meta):
        ordering = ["user__username"]
        constraints = [
            *OrganisationRef.Meta.constraints,
            models.CheckConstraint(
                condition=Q(role__in=Role.values), name="%(app_label)s_%(class)s_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user.get_username()} ({self.role}, {self.organisation})"

    def may(self, role: str) -> bool:
        """Whether this member has at least ``role``."""
        return ROLE_RANK[Role(self.role)] >= ROLE_RANK[Role(role)]


class Invitation(OrganisationRef):
    """A single-use link to create an account at an organisation. Only a SHA-256 of its token
    is stored; the link is shown once, to the person who invites."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(_("email"))
    role = models.CharField(_("role"), max_length=13, choices=Role.choices)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta(OrganisationRef.Meta):
        ordering = ["-created_at"]
        constraints = [
            *OrganisationRef.Meta.constraints,
            models.CheckConstraint(
                condition=Q(role__in=Role.values), name="%(app_label)s_%(class)s_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} ({self.role})"

    def is_usable(self, now=None) -> bool:
        now = now or timezone.now()
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > now
