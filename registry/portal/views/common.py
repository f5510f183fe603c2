"""Pages every member organisation has: start page, API tokens, users, audit trail."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from registry.models import ApiToken
from registry.portal import selectors
from registry.portal.access import attempt, member_view, refuse
from registry.portal.forms import InviteForm, RoleForm, TokenForm
from registry.portal.models import Invitation, Membership, Role
from registry.portal.views import issuer, provider
from registry.services import accounts, tokens

TOKEN_SESSION_KEY = "portal_new_token"
INVITATION_SESSION_KEY = "portal_new_invitation"


@member_view()
def home(request):
    if request.membership.kind == "provider":
        return provider.home(request)
    return issuer.home(request)


def _org_filter(request) -> dict[str, object]:
    return {request.membership.kind: request.organisation}


@member_view()
def token_list(request):
    """API tokens: anyone reads the list; administrators create and revoke. A new token is
    shown once, after a redirect, so that a reload never creates a second one."""
    form = TokenForm(request.POST or None)
    if request.method == "POST" and not request.membership.may(Role.ADMINISTRATOR):
        return refuse(request, _("Only your organisation's administrators create tokens."))
    if request.method == "POST" and form.is_valid():
        created = attempt(
            request,
            lambda: tokens.token_create(
                actor=request.actor,
                owner=request.organisation,
                name=form.cleaned_data["name"],
                expires_in_days=form.cleaned_data["expires_in_days"],
            ),
        )
        if created:
            request.session[TOKEN_SESSION_KEY] = created[1]
            return redirect("portal:tokens")
    rows = ApiToken.objects.filter(**_org_filter(request)).order_by("revoked_at", "-created_at")
    return render(
        request,
        "portal/tokens.html",
        {"form": form, "tokens": rows, "new_token": request.session.pop(TOKEN_SESSION_KEY, None)},
    )


@member_view(role=Role.ADMINISTRATOR)
@require_POST
def token_revoke(request, pk):
    token = get_object_or_404(ApiToken, pk=pk, **_org_filter(request))
    attempt(
        request,
        lambda: tokens.token_revoke(actor=request.actor, token=token),
        _("Token revoked: it is refused from now on."),
    )
    return redirect("portal:tokens")


@member_view(role=Role.ADMINISTRATOR)
def users(request):
    form = InviteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        invited = attempt(
            request,
            lambda: accounts.portal_user_invite(
                actor=request.actor,
                organisation=request.organisation,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
            ),
        )
        if invited:
            _invitation, token = invited
            request.session[INVITATION_SESSION_KEY] = request.build_absolute_uri(
                f"/portal/invitation/{token}/"
            )
            return redirect("portal:users")
    members = Membership.objects.filter(**_org_filter(request)).select_related("user")
    invitations = Invitation.objects.filter(
        **_org_filter(request), accepted_at__isnull=True, revoked_at__isnull=True
    )
    return render(
        request,
        "portal/users.html",
        {
            "form": form,
            "members": members,
            "invitations": invitations,
            "role_form": RoleForm(),
            "new_link": request.session.pop(INVITATION_SESSION_KEY, None),
        },
    )


@member_view(role=Role.ADMINISTRATOR)
@require_POST
def user_role(request, pk):
    membership = get_object_or_404(Membership, pk=pk, **_org_filter(request))
    form = RoleForm(request.POST)
    if form.is_valid():
        attempt(
            request,
            lambda: accounts.portal_user_set_role(
                actor=request.actor, membership=membership, role=form.cleaned_data["role"]
            ),
            _("Role changed."),
        )
    return redirect("portal:users")


@member_view(role=Role.ADMINISTRATOR)
@require_POST
def user_remove(request, pk):
    membership = get_object_or_404(Membership, pk=pk, **_org_filter(request))
    removed = attempt(
        request,
        lambda: accounts.portal_user_remove(actor=request.actor, membership=membership),
        _("User removed."),
    )
    if removed and membership.user_id == request.user.pk:
        return redirect("portal:login")
    return redirect("portal:users")


@member_view()
def audit(request):
    page = Paginator(selectors.audit_trail(request.organisation), 100).get_page(
        request.GET.get("page")
    )
    return render(request, "portal/audit.html", {"page": page})
