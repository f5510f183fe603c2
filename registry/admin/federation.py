"""The federation: the documents accepted, the peers' health and the traffic forwarded."""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from directory.federation import members, selectors, services
from directory.federation.models import FederationDocument, PeerHealth, PeerTraffic
from directory.transparency import federation as fed
from registry.admin.actions import ReadOnlyAdmin
from registry.admin.site import admin_site


@admin.register(FederationDocument, site=admin_site)
class FederationDocumentAdmin(ReadOnlyAdmin):
    """Every document this registry accepted; the highest serial is in force."""

    list_display = ["serial", "federation", "in_force", "quorum", "member_count", "installed_at"]
    fields = [
        "serial",
        "federation",
        "in_force",
        "quorum",
        "members_table",
        "installed_at",
        "installed_by",
        "signed",
    ]
    readonly_fields = ["in_force", "quorum", "members_table"]

    def _document(self, obj) -> fed.Document | None:
        try:
            return fed.verify(obj.signed, members.pinned_keys())
        except fed.FederationError:  # keys re-pinned since, or the row was edited
            return None

    @admin.display(boolean=True, description=_("In force"))
    def in_force(self, obj) -> bool:
        current = members.current()
        return current is not None and current.serial == obj.serial

    @admin.display(description=_("Witness quorum"))
    def quorum(self, obj):
        document = self._document(obj)
        return document.quorum if document else _("does not verify")

    @admin.display(description=_("Members"))
    def member_count(self, obj):
        document = self._document(obj)
        return len(document.members) if document else _("does not verify")

    @admin.display(description=_("Members"))
    def members_table(self, obj):
        document = self._document(obj)
        if document is None:
            return _("This document does not verify against the pinned federation keys.")
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (m.name, m.status, ", ".join(m.allocators), m.url, m.witness_url or "—")
                for m in document.members
            ),
        )
        return format_html(
            "<table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>{}</table>",
            _("Name"),
            _("Status"),
            _("Allocators"),
            _("URL"),
            _("Witness"),
            rows,
        )


@admin.register(PeerHealth, site=admin_site)
class PeerHealthAdmin(ReadOnlyAdmin):
    """The members of the document in force, each with its health and traffic: one page
    (``peers.html``) instead of a list of rows, since a member without a row yet is shown too."""

    def get_urls(self):
        check = path(
            "check/",
            self.admin_site.admin_view(self.check_view),
            name="federation_peerhealth_check",
        )
        return [check, *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        overview = selectors.federation_overview()
        context = {
            **self.admin_site.each_context(request),
            "title": _("Federation peers"),
            "overview": overview,
            "opts": self.model._meta,
            "check_url": reverse("admin:federation_peerhealth_check"),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/federation/peers.html", context)

    def check_view(self, request):
        """Fetch every peer's checkpoint now (``federation_peers_check``), then show them."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        checked = services.federation_peers_check()
        failed = [health.member for health in checked if health.last_error_at == health.checked_at]
        self.message_user(
            request,
            ngettext("%(count)s peer checked.", "%(count)s peers checked.", len(checked))
            % {"count": len(checked)},
        )
        if failed:
            self.message_user(
                request, _("Not reachable or refused: %s") % ", ".join(failed), messages.WARNING
            )
        return HttpResponseRedirect(reverse("admin:federation_peerhealth_changelist"))


@admin.register(PeerTraffic, site=admin_site)
class PeerTrafficAdmin(ReadOnlyAdmin):
    """Requests forwarded per peer, minute and direction (``directory.federation.traffic``)."""

    list_display = ["minute", "member", "direction", "lookups", "plans", "numbers", "errors"]
    list_filter = ["direction", "member", ("minute", admin.DateFieldListFilter)]
    date_hierarchy = "minute"
