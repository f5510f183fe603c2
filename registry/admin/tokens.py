"""API tokens as records (never their value nor hash); revocation."""

from __future__ import annotations

from django.contrib import admin
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from registry.admin import token_pages
from registry.admin.actions import ReadOnlyAdmin, confirmed_action
from registry.admin.site import admin_site
from registry.models import ApiToken
from registry.services import tokens
from registry.services.common import Actor


@admin.register(ApiToken, site=admin_site)
class ApiTokenAdmin(ReadOnlyAdmin):
    list_display = [
        "name",
        "prefix",
        "scope",
        "provider",
        "issuer",
        "expires_at",
        "revoked_at",
        "last_used_at",
    ]
    list_filter = ["scope"]
    list_select_related = ["provider", "issuer"]
    exclude = ["key_hash"]
    actions = ["revoke"]

    def get_urls(self):
        created = path(
            "created/<str:key>/",
            self.admin_site.admin_view(token_pages.created_view),
            name="registry_apitoken_created",
        )
        return [created, *super().get_urls()]

    @confirmed_action(
        description=_("Revoke selected tokens (asks for a reason)"),
        title=_("Revoke tokens"),
        impact=lambda tokens: [_orphaned(tokens)],
    )
    def revoke(self, request, queryset, reason):
        actor = Actor.for_user(request.user)
        self._run(
            request,
            queryset,
            lambda t: tokens.token_revoke(actor=actor, token=t, reason=reason),
            _("Revoked"),
        )


def _orphaned(queryset) -> str:
    """How many owners are left without a live token (their API calls answer 401)."""
    now = timezone.now()
    live = ApiToken.objects.filter(revoked_at__isnull=True, expires_at__gt=now)
    chosen = queryset.order_by().values("pk")
    owners = 0
    for field in ("provider", "issuer"):
        selected = live.filter(pk__in=chosen).exclude(**{f"{field}__isnull": True})
        left = live.exclude(pk__in=chosen).filter(**{f"{field}__isnull": False}).values(field)
        owners += selected.exclude(**{f"{field}__in": left}).values(field).distinct().count()
    return ngettext(
        "%(count)s provider or issuer is left without a live token: its API calls answer 401.",
        "%(count)s providers and issuers are left without a live token: their API calls "
        "answer 401.",
        owners,
    ) % {"count": owners}
