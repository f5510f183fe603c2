"""Every transfer of the federation, and transfer codes as records (never their value)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Q

from registry import numbers
from registry.admin.actions import ReadOnlyAdmin
from registry.admin.site import admin_site
from registry.models import Transfer, TransferCode
from registry.services import transfers


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

    @admin.display(description="vault", ordering="vault")
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

    @admin.action(description="Cancel selected pending transfers (server_cancelled, with reason)")
    def server_cancel(self, request, queryset):
        return self._with_reason(
            request,
            queryset,
            transfers.transfer_server_cancel,
            action="server_cancel",
            title="Cancel the transfer: give a reason",
            success="Cancelled",
        )

    @admin.action(description="Approve selected pending transfers now (server_approved, reason)")
    def server_approve(self, request, queryset):
        return self._with_reason(
            request,
            queryset,
            transfers.transfer_server_approve,
            action="server_approve",
            title="Approve the transfer now: give a reason",
            success="Approved",
        )


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
