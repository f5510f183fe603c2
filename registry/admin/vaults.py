"""Vaults: holds, closure and the registry lock."""

from __future__ import annotations

from django.contrib import admin

from registry import numbers
from registry.admin.actions import ReadOnlyAdmin
from registry.admin.site import admin_site
from registry.models import Vault
from registry.services import transfers, vaults
from registry.services.common import Actor
from registry.services.vaults import HoldKind


@admin.register(Vault, site=admin_site)
class VaultAdmin(ReadOnlyAdmin):
    list_display = [
        "display",
        "provider",
        "status",
        "client_hold",
        "server_hold",
        "registry_lock",
        "created_at",
    ]
    list_filter = ["status", "server_hold", "client_hold", "registry_lock"]
    list_select_related = ["provider"]
    search_fields = ["number"]
    show_full_result_count = False
    actions = [
        "server_hold",
        "release_server_hold",
        "close",
        "set_registry_lock",
        "clear_registry_lock",
    ]

    @admin.display(description="number", ordering="number")
    def display(self, vault: Vault) -> str:
        return numbers.format_display(vault.number)

    def get_search_results(self, request, queryset, search_term):
        # People paste numbers in display form; search the compact form too.
        term = numbers.compact(search_term)
        if term:
            return queryset.filter(number__startswith=term), False
        return queryset, False

    @admin.action(description="Put selected vaults on server hold (registry stops delivery)")
    def server_hold(self, request, queryset):
        actor = Actor.for_user(request.user)
        self._run(
            request,
            queryset,
            lambda v: vaults.vault_hold(actor=actor, vault=v, kind=HoldKind.SERVER),
            "Held",
        )

    @admin.action(description="Release the server hold of selected vaults")
    def release_server_hold(self, request, queryset):
        actor = Actor.for_user(request.user)
        self._run(
            request,
            queryset,
            lambda v: vaults.vault_release(actor=actor, vault=v, kind=HoldKind.SERVER),
            "Released",
        )

    @admin.action(description="Close selected vaults (tombstone, never reallocated)")
    def close(self, request, queryset):
        actor = Actor.for_user(request.user)
        self._run(request, queryset, lambda v: vaults.vault_close(actor=actor, vault=v), "Closed")

    def _registry_lock(self, request, queryset, *, locked: bool, action: str):
        return self._with_reason(
            request,
            queryset,
            transfers.vault_set_registry_lock,
            action=action,
            title=("Set" if locked else "Clear") + " registry_lock: give a reason",
            success="registry_lock " + ("set" if locked else "cleared"),
            locked=locked,
        )

    @admin.action(description="Set registry_lock (blocks transfers; cancels a pending one)")
    def set_registry_lock(self, request, queryset):
        return self._registry_lock(request, queryset, locked=True, action="set_registry_lock")

    @admin.action(description="Clear registry_lock (asks for a reason)")
    def clear_registry_lock(self, request, queryset):
        return self._registry_lock(request, queryset, locked=False, action="clear_registry_lock")
