"""API tokens as records (never their value nor hash); revocation."""

from __future__ import annotations

from django.contrib import admin

from registry.admin.actions import ReadOnlyAdmin
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

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset):
        actor = Actor.for_user(request.user)
        self._run(request, queryset, lambda t: tokens.token_revoke(actor=actor, token=t), "Revoked")
