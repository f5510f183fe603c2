"""Who may see a portal page: a signed-in member who passed the second factor, of the right
kind of organisation, with at least the page's role. Pages are never cached."""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache

from registry.errors import DomainError
from registry.portal.errors import explain
from registry.portal.models import Role
from registry.services.common import Actor


def member_view(role: str = Role.VIEWER, kind: str | None = None):
    """Decorate a portal view: sets ``request.membership``, ``request.organisation`` and
    ``request.actor`` (the person, by name, acting for the organisation)."""

    def decorate(view):
        @wraps(view)
        @never_cache
        def wrapped(request, *args, **kwargs):
            user = request.user
            if not user.is_authenticated:
                return redirect(f"{_login_url()}?next={request.path}")
            membership = getattr(user, "membership", None)
            if membership is None:
                return refuse(request, _("This account does not belong to a member organisation."))
            if not user.is_verified():
                return redirect("portal:totp-enrol")
            if kind is not None and membership.kind != kind:
                return refuse(request, _("This page is for another kind of organisation."))
            if not membership.may(role):
                return refuse(
                    request,
                    _("Your role (%(role)s) does not allow this page.")
                    % {"role": membership.get_role_display()},
                )
            request.membership = membership
            request.organisation = membership.organisation
            request.actor = Actor.for_user(user)
            return view(request, *args, **kwargs)

        return wrapped

    return decorate


def _login_url() -> str:
    from django.urls import reverse

    return reverse("portal:login")


def refuse(request, message: str, status: int = 403):
    """A friendly refusal page."""
    return render(request, "portal/refused.html", {"message": message}, status=status)


def attempt(request, call, success: str = "") -> object | None:
    """Run a service call; on a refusal, say why in a message and return None."""
    try:
        result = call()
    except DomainError as exc:
        messages.error(request, explain(exc))
        return None
    if success:
        messages.success(request, success)
    return result if result is not None else True
