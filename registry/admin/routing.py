"""Endpoints and certificates providers publish."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from registry import selectors
from registry.admin.actions import ReadOnlyAdmin, confirmed_action
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

    @confirmed_action(
        description=_("Deactivate selected endpoints (asks for a reason)"),
        title=_("Deactivate endpoints"),
        impact=lambda endpoints: [
            _undeliverable(selectors.undeliverable_if_endpoints_go(endpoints), _("endpoint"))
        ],
    )
    def deactivate(self, request, queryset, reason):
        actor = Actor.for_user(request.user)
        self._run(
            request,
            queryset,
            lambda e: routing.endpoint_deactivate(actor=actor, endpoint=e, reason=reason),
            _("Deactivated"),
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

    @confirmed_action(
        description=_("Retire selected certificates (asks for a reason)"),
        title=_("Retire certificates"),
        impact=lambda certificates: [
            _undeliverable(
                selectors.undeliverable_if_certificates_go(certificates),
                _("valid encryption certificate"),
            )
        ],
    )
    def retire(self, request, queryset, reason):
        actor = Actor.for_user(request.user)
        self._run(
            request,
            queryset,
            lambda c: routing.certificate_retire(actor=actor, certificate=c, reason=reason),
            _("Retired"),
        )


def _undeliverable(count: int, what) -> str:
    return ngettext(
        "%(count)s vault deliverable now becomes undeliverable (its provider has no other "
        "%(what)s).",
        "%(count)s vaults deliverable now become undeliverable (their provider has no other "
        "%(what)s).",
        count,
    ) % {"count": count, "what": what}
