"""Signing in (password and second factor in one form), invitations, TOTP enrolment and
recovery codes. A failed login never says which factor was wrong; django-axes counts both."""

from __future__ import annotations

import base64

import qrcode
import qrcode.image.svg
from django.contrib import messages
from django.contrib.auth import authenticate, login, logout
from django.contrib.auth.signals import user_login_failed
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from django_otp import devices_for_user, match_token
from django_otp import login as otp_login

from registry.errors import DomainError
from registry.portal.access import member_view, refuse
from registry.portal.errors import explain
from registry.portal.forms import CodeForm, InvitationForm, LoginForm
from registry.services import accounts

RECOVERY_SESSION_KEY = "portal_recovery_codes"


def _failed(request, form: LoginForm, username: str):
    """Count the failure (django-axes listens) and answer one message for every cause."""
    user_login_failed.send(sender=__name__, credentials={"username": username}, request=request)
    form.add_error(None, _("The user name, the password or the code is wrong."))
    return render(request, "portal/login.html", {"form": form}, status=200)


@never_cache
def login_view(request):
    form = LoginForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        username = form.cleaned_data["username"]
        user = authenticate(request, username=username, password=form.cleaned_data["password"])
        if getattr(request, "axes_locked_out", False):
            return render(request, "portal/locked.html", status=429)
        if user is None:
            # authenticate() already told django-axes about the failure.
            form.add_error(None, _("The user name, the password or the code is wrong."))
            return render(request, "portal/login.html", {"form": form})
        if getattr(user, "membership", None) is None:
            return _failed(request, form, username)
        confirmed = list(devices_for_user(user, confirmed=True))
        if confirmed:
            device = match_token(user, form.cleaned_data["code"].replace(" ", ""))
            if device is None:
                return _failed(request, form, username)
            login(request, user)
            otp_login(request, device)
            target = request.GET.get("next", "")
            if not url_has_allowed_host_and_scheme(target, {request.get_host()}):
                target = ""
            return redirect(target or "portal:home")
        # First login: the password was right and no device exists yet: enrol one now.
        login(request, user)
        return redirect("portal:totp-enrol")
    return render(request, "portal/login.html", {"form": form})


@require_POST
def logout_view(request):
    logout(request)
    messages.info(request, _("You are signed out."))
    return redirect("portal:login")


@never_cache
def invitation_view(request, token: str):
    try:
        invitation = accounts.invitation_for(token)
    except DomainError as exc:
        return refuse(request, explain(exc), status=404)
    form = InvitationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = accounts.portal_invitation_accept(
                token=token,
                username=form.cleaned_data["username"],
                password=form.cleaned_data["password"],
                full_name=form.cleaned_data["full_name"],
            )
        except DomainError as exc:
            form.add_error(exc.extra.get("field"), explain_detail(exc))
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect("portal:totp-enrol")
    return render(request, "portal/invitation.html", {"form": form, "invitation": invitation})


def explain_detail(exc: DomainError) -> str:
    """Password rules come from Django's validators, already translated."""
    if exc.code == "validation_error" and exc.detail:
        return exc.detail
    return explain(exc)


def qr_svg(data: str) -> str:
    """An SVG QR code of ``data``, inline in the page (no image request, no script)."""
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    return image.to_string(encoding="unicode")


@never_cache
def totp_enrol_view(request):
    """Show the new device's secret as a QR code until the person types a first code."""
    user = request.user
    if not user.is_authenticated or getattr(user, "membership", None) is None:
        return redirect("portal:login")
    if user.is_verified():
        return redirect("portal:home")
    if list(devices_for_user(user, confirmed=True)):
        # Enrolled already: this session must pass the code at login.
        logout(request)
        return redirect("portal:login")
    device = accounts.totp_pending_device(user)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            device, codes = accounts.portal_totp_confirm(
                user=user, device=device, code=form.cleaned_data["code"]
            )
        except DomainError:
            form.add_error("code", _("This code is not the expected one: try the next one."))
        else:
            otp_login(request, device)
            request.session[RECOVERY_SESSION_KEY] = codes
            return redirect("portal:recovery-codes")
    secret = base64.b32encode(device.bin_key).decode()
    return render(
        request,
        "portal/totp_enrol.html",
        {
            "form": form,
            "qr": qr_svg(device.config_url),
            "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        },
    )


@member_view()
def recovery_codes_view(request):
    """The recovery codes, shown once (POST/redirect/GET: a reload shows them no more)."""
    if request.method == "POST":
        codes = accounts.portal_recovery_codes_renew(user=request.user)
        request.session[RECOVERY_SESSION_KEY] = codes
        return redirect("portal:recovery-codes")
    codes = request.session.pop(RECOVERY_SESSION_KEY, None)
    return render(request, "portal/recovery_codes.html", {"codes": codes})
