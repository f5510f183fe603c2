"""Vaults: holds, closure and the registry lock."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from registry import numbers, selectors
from registry.admin.actions import ReadOnlyAdmin, confirmed_action
from registry.admin.site import admin_site
from registry.models import Vault
from registry.services import vaults
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

    @confirmed_action(
        description=_("Put on server hold: the registry stops delivery (asks for a reason)"),
        title=_("Put vaults on server hold"),
        impact=lambda vaults: [_undeliverable(selectors.undeliverable_if_held(vaults))],
    )
    def server_hold(self, request, queryset, reason):
        outcome = vaults.vault_hold_many(
            actor=Actor.for_user(request.user), vaults=queryset, kind=HoldKind.SERVER, reason=reason
        )
        self.report(request, outcome, _("Held"))

    @confirmed_action(
        description=_("Release the server hold (asks for a reason)"),
        title=_("Release the server hold"),
        impact=lambda vaults: [_deliverable_again(selectors.deliverable_if_released(vaults))],
    )
    def release_server_hold(self, request, queryset, reason):
        outcome = vaults.vault_release_many(
            actor=Actor.for_user(request.user), vaults=queryset, kind=HoldKind.SERVER, reason=reason
        )
        self.report(request, outcome, _("Released"))

    @confirmed_action(
        description=_("Close: tombstone, never reallocated, irreversible (asks for a reason)"),
        title=_("Close vaults for good"),
        impact=lambda vaults: [
            _undeliverable(selectors.undeliverable_if_held(vaults)),
            _("Closing cannot be undone: the numbers answer 410 Gone and are never reused."),
            _pending(vaults),
        ],
    )
    def close(self, request, queryset, reason):
        outcome = vaults.vault_close_many(
            actor=Actor.for_user(request.user), vaults=queryset, reason=reason
        )
        self.report(request, outcome, _("Closed"))

    @confirmed_action(
        description=_("Set registry_lock: blocks transfers, updates, closure (asks for a reason)"),
        title=_("Set registry_lock"),
        impact=lambda vaults: [
            _("Delivery is not affected; transfers, holds and closure by providers are blocked."),
            _pending(vaults),
        ],
    )
    def set_registry_lock(self, request, queryset, reason):
        outcome = vaults.vault_set_registry_lock_many(
            actor=Actor.for_user(request.user), vaults=queryset, locked=True, reason=reason
        )
        self.report(request, outcome, _("registry_lock set"))

    @confirmed_action(
        description=_("Clear registry_lock (asks for a reason)"),
        title=_("Clear registry_lock"),
        impact=lambda vaults: [_("Providers may again move, hold and close these vaults.")],
    )
    def clear_registry_lock(self, request, queryset, reason):
        outcome = vaults.vault_set_registry_lock_many(
            actor=Actor.for_user(request.user), vaults=queryset, locked=False, reason=reason
        )
        self.report(request, outcome, _("registry_lock cleared"))


def _undeliverable(count: int) -> str:
    return ngettext(
        "%(count)s vault deliverable now becomes undeliverable.",
        "%(count)s vaults deliverable now become undeliverable.",
        count,
    ) % {"count": count}


def _deliverable_again(count: int) -> str:
    return ngettext(
        "%(count)s vault becomes deliverable again.",
        "%(count)s vaults become deliverable again.",
        count,
    ) % {"count": count}


def _pending(vaults) -> str:
    count = vaults.order_by().filter(pending_transfer=True).count()
    return ngettext(
        "%(count)s pending transfer ends server_cancelled.",
        "%(count)s pending transfers end server_cancelled.",
        count,
    ) % {"count": count}
