"""Portal accounts: staff of member organisations, invited, with a role and a second factor.

An organisation's administrator or a federation admin invites a person by a single-use link
(only its hash is stored); the person chooses a password, enrols a TOTP device and receives
recovery codes. Every step is audited with the person's name.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from registry.errors import Conflict, ErrorCode, Forbidden, InvalidInput, NotFound
from registry.models import Issuer, Provider
from registry.portal.models import Invitation, Membership, Role
from registry.services.common import Actor, record_audit

INVITATION_DAYS = 7
RECOVERY_CODES = 10
PORTAL_DEVICE = "portal"


def hash_invitation(token: str) -> str:
    """SHA-256 hex of an invitation token (256 random bits: no salt needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _may_manage(actor: Actor, organisation: Provider | Issuer) -> None:
    """Federation admins, and the organisation's own administrators, manage its users."""
    if actor.is_federation_admin:
        return
    membership = getattr(actor.user, "membership", None)
    if (
        membership is None
        or membership.organisation != organisation
        or not membership.may(Role.ADMINISTRATOR)
    ):
        raise Forbidden(
            ErrorCode.PERMISSION_DENIED,
            "Only the organisation's administrators and federation admins manage its users.",
        )


@transaction.atomic
def portal_user_invite(
    *, actor: Actor, organisation: Provider | Issuer, email: str, role: str
) -> tuple[Invitation, str]:
    """Invite a person to an organisation; returns the invitation and its token, shown once."""
    _may_manage(actor, organisation)
    if role not in Role.values:
        raise InvalidInput(ErrorCode.VALIDATION_ERROR, "Unknown role.")
    now = timezone.now()
    token = secrets.token_urlsafe(32)
    invitation = Invitation(
        provider=organisation if isinstance(organisation, Provider) else None,
        issuer=organisation if isinstance(organisation, Issuer) else None,
        email=(email or "").strip().lower(),
        role=role,
        token_hash=hash_invitation(token),
        invited_by=actor.label,
        created_at=now,
        expires_at=now + timedelta(days=INVITATION_DAYS),
    )
    try:
        invitation.full_clean()
    except ValidationError as exc:
        raise InvalidInput(ErrorCode.VALIDATION_ERROR, "; ".join(exc.messages)) from exc
    invitation.save(force_insert=True)
    record_audit(
        actor,
        "portal:invited",
        organisation,
        at=now,
        data={"invitation": str(invitation.pk), "email": invitation.email, "role": role},
    )
    return invitation, token


def invitation_for(token: str) -> Invitation:
    """The usable invitation with this token (a selector), or 404."""
    invitation = (
        Invitation.objects.select_related("provider", "issuer")
        .filter(token_hash=hash_invitation(token or ""))
        .first()
    )
    if invitation is None or not invitation.is_usable():
        raise NotFound(ErrorCode.NOT_FOUND, "This invitation is unknown, used or expired.")
    return invitation


@transaction.atomic
def portal_invitation_accept(
    *, token: str, username: str, password: str, full_name: str = ""
) -> AbstractBaseUser:
    """Create the invited person's account (the token is used up) with the invited role."""
    invitation = invitation_for(token)
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if not invitation.is_usable():
        raise NotFound(ErrorCode.NOT_FOUND, "This invitation is unknown, used or expired.")
    User = get_user_model()
    username = (username or "").strip()
    if not username:
        raise InvalidInput(
            ErrorCode.VALIDATION_ERROR, "A user name is required.", extra={"field": "username"}
        )
    if User.objects.filter(username__iexact=username).exists():
        raise Conflict(
            ErrorCode.USERNAME_TAKEN, "This user name is taken.", extra={"field": "username"}
        )
    first, _, last = (full_name or "").strip().partition(" ")
    user = User(username=username, email=invitation.email, first_name=first, last_name=last)
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise InvalidInput(
            ErrorCode.VALIDATION_ERROR, " ".join(exc.messages), extra={"field": "password"}
        ) from exc
    user.set_password(password)
    user.save()
    now = timezone.now()
    Membership.objects.create(
        user=user,
        provider=invitation.provider,
        issuer=invitation.issuer,
        role=invitation.role,
        created_at=now,
    )
    invitation.accepted_at = now
    invitation.user = user
    invitation.save(update_fields=["accepted_at", "user"])
    user = User.objects.select_related("membership").get(pk=user.pk)
    record_audit(
        Actor.for_user(user),
        "portal:joined",
        invitation.organisation,
        at=now,
        data={"invitation": str(invitation.pk), "role": invitation.role},
    )
    return user


@transaction.atomic
def portal_user_set_role(*, actor: Actor, membership: Membership, role: str) -> Membership:
    """Change a member's role; an organisation keeps at least one administrator."""
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    _may_manage(actor, membership.organisation)
    if role not in Role.values:
        raise InvalidInput(ErrorCode.VALIDATION_ERROR, "Unknown role.")
    _keep_an_administrator(membership, losing=role != Role.ADMINISTRATOR)
    now = timezone.now()
    previous, membership.role = membership.role, role
    membership.save(update_fields=["role"])
    record_audit(
        actor,
        "portal:role_changed",
        membership.organisation,
        at=now,
        data={"user": membership.user.get_username(), "from": previous, "to": role},
    )
    return membership


@transaction.atomic
def portal_user_remove(*, actor: Actor, membership: Membership) -> None:
    """Remove a member: the account is deactivated and loses its organisation."""
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    organisation = membership.organisation
    _may_manage(actor, organisation)
    _keep_an_administrator(membership, losing=True)
    user = membership.user
    now = timezone.now()
    record_audit(actor, "portal:removed", organisation, at=now, data={"user": user.get_username()})
    membership.delete()
    user.is_active = False
    user.save(update_fields=["is_active"])


def _keep_an_administrator(membership: Membership, *, losing: bool) -> None:
    if not losing or membership.role != Role.ADMINISTRATOR:
        return
    others = Membership.objects.filter(
        provider=membership.provider, issuer=membership.issuer, role=Role.ADMINISTRATOR
    ).exclude(pk=membership.pk)
    if not others.exists():
        raise Conflict(
            ErrorCode.LAST_ADMINISTRATOR, "The organisation must keep at least one administrator."
        )


# --- Second factor --------------------------------------------------------------------------


def totp_pending_device(user: AbstractBaseUser) -> TOTPDevice:
    """The user's unconfirmed TOTP device to enrol, created on first need (its secret is
    shown as a QR code until the person confirms it with a code)."""
    device = TOTPDevice.objects.filter(user=user, name=PORTAL_DEVICE, confirmed=False).first()
    return device or TOTPDevice.objects.create(user=user, name=PORTAL_DEVICE, confirmed=False)


@transaction.atomic
def portal_totp_confirm(
    *, user: AbstractBaseUser, device: TOTPDevice, code: str
) -> tuple[TOTPDevice, list[str]]:
    """Confirm a TOTP device with a first code; returns it and fresh recovery codes (shown
    once). Any other device of the user is removed: one authenticator per person."""
    device = TOTPDevice.objects.select_for_update().get(pk=device.pk, user=user)
    if not device.verify_token((code or "").replace(" ", "")):
        raise InvalidInput(ErrorCode.VALIDATION_ERROR, "This code is not the expected one.")
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
    codes = _new_recovery_codes(user)
    record_audit(Actor.for_user(user), "portal:totp_enrolled", user, at=timezone.now(), data={})
    return device, codes


@transaction.atomic
def portal_recovery_codes_renew(*, user: AbstractBaseUser) -> list[str]:
    """Replace the user's recovery codes (the old ones stop working); shown once."""
    codes = _new_recovery_codes(user)
    record_audit(
        Actor.for_user(user), "portal:recovery_codes_renewed", user, at=timezone.now(), data={}
    )
    return codes


def _new_recovery_codes(user: AbstractBaseUser) -> list[str]:
    device, _ = StaticDevice.objects.get_or_create(
        user=user, name="recovery", defaults={"confirmed": True}
    )
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=c) for c in codes])
    return codes
