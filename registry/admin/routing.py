"""Endpoints and certificates providers publish."""

from __future__ import annotations

from django.contrib import admin

from registry.admin.actions import ReadOnlyAdmin
from registry.admin.site import admin_site
from registry.models import Certificate, Endpoint
from registry.services import routing
from registry.services.common import Actor


@admin.register(Endpoint, site=admin_site)
class EndpointAdmin(ReadOnlyAdmin):
    list_display = [
        "url",
        "provider",
        "transport_profile",
        "activates_at",
        "expires_at",
        "deactivated_at",
    ]
    list_filter = ["transport_profile"]
    list_select_related = ["provider"]
    search_fields = ["url", "provider__legal_name"]
    actions = ["deactivate"]

    @admin.action(description="Deactivate selected endpoints")
    def deactivate(self, request, queryset):
        actor = Actor.for_user(request.user)
        self._run(
            request,
            queryset,
            lambda endpoint: routing.endpoint_deactivate(actor=actor, endpoint=endpoint),
            "Deactivated",
        )


@admin.register(Certificate, site=admin_site)
class CertificateAdmin(ReadOnlyAdmin):
    list_display = [
        "fingerprint_sha256",
        "provider",
        "use",
        "key_type",
        "not_before",
        "not_after",
        "retired_at",
    ]
    list_filter = ["use", "key_type"]
    list_select_related = ["provider"]
    search_fields = ["fingerprint_sha256", "subject", "provider__legal_name"]
    actions = ["retire"]

    @admin.action(description="Retire selected certificates")
    def retire(self, request, queryset):
        actor = Actor.for_user(request.user)
        self._run(
            request,
            queryset,
            lambda cert: routing.certificate_retire(actor=actor, certificate=cert),
            "Retired",
        )
