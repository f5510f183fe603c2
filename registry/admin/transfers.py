"""Every transfer of the federation, and transfer codes as records (never their value)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from registry import numbers, selectors
from registry.admin.actions import ReadOnlyAdmin, confirmed_action
from registry.admin.site import admin_site
from registry.models import Transfer, TransferCode
from registry.services import transfers
from registry.services.common import Actor


@admin.register(Transfer, site=admin_site)
class TransferAdmin(ReadOnlyAdmin):
    """Every transfer of the federation; disputes are settled by cancelling or approving one."""

    list_display = [
        "vault_display",
        "state",
        "losing_provider",
        "gaining_provider",
        "requested_at",
        "deadline",
        "resolved_at",
    ]
    list_filter = ["state"]
    list_select_related = ["losing_provider", "gaining_provider"]
    search_fields = ["vault__number", "consent_reference"]  # see get_search_results
    show_full_result_count = False
    exclude = ["code"]
    actions = ["server_cancel", "server_approve"]

    @admin.display(description=_("vault"), ordering="vault")
    def vault_display(self, transfer: Transfer) -> str:
        return numbers.format_display(transfer.vault_id)

    def get_search_results(self, request, queryset, search_term):
        """A vault number in any input form (its prefix), or a consent reference."""
        term = numbers.compact(search_term)
        if not term:
            return queryset, False
        # ``vault__number`` is the foreign key's own column: no join. (``vault_id__startswith``
        # is no lookup Django knows: every search answered 500.)
        matches = Q(vault__number__startswith=term) | Q(consent_reference=search_term.strip())
        return queryset.filter(matches), False

    @confirmed_action(
        description=_("Cancel selected pending transfers (server_cancelled, asks for a reason)"),
        title=_("Cancel transfers"),
        impact=lambda transfers: [_ending(transfers, _("stay with their current provider"))],
    )
    def server_cancel(self, request, queryset, reason):
        actor = Actor.for_user(request.user)
        self._run(
            request,
            queryset,
            lambda t: transfers.transfer_server_cancel(actor=actor, transfer=t, reason=reason),
            _("Cancelled"),
        )

    @confirmed_action(
        description=_(
            "Approve selected pending transfers now (server_approved, asks for a reason)"
        ),
        title=_("Approve transfers now"),
        impact=lambda transfers: [
            _ending(transfers, _("route to the gaining provider from now on")),
            ngettext(
                "%(count)s vault deliverable now becomes undeliverable (its gaining provider "
                "cannot receive documents).",
                "%(count)s vaults deliverable now become undeliverable (their gaining provider "
                "cannot receive documents).",
                n := selectors.undeliverable_if_approved(transfers),
            )
            % {"count": n},
        ],
    )
    def server_approve(self, request, queryset, reason):
        actor = Actor.for_user(request.user)
        self._run(
            request,
            queryset,
            lambda t: transfers.transfer_server_approve(actor=actor, transfer=t, reason=reason),
            _("Approved"),
        )


def _ending(queryset, outcome) -> str:
    count = queryset.order_by().pending().count()
    return ngettext(
        "%(count)s pending transfer ends; its vault will %(outcome)s.",
        "%(count)s pending transfers end; their vaults will %(outcome)s.",
        count,
    ) % {"count": count, "outcome": outcome}


@admin.register(TransferCode, site=admin_site)
class TransferCodeAdmin(ReadOnlyAdmin):
    """Codes as records only: their value is never stored, and their hash is not shown."""

    list_display = [
        "vault",
        "provider",
        "created_at",
        "expires_at",
        "failed_attempts",
        "locked_at",
        "used_at",
        "voided_at",
        "void_reason",
    ]
    list_filter = ["void_reason"]
    list_select_related = ["vault", "provider"]
    search_fields = ["vault__number"]
    show_full_result_count = False
    exclude = ["salt", "code_hash"]
