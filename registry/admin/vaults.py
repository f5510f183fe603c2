"""Vaults: holds, closure and the registry lock."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from directory import history as directory_history
from directory import proven
from registry import numbers, selectors
from registry.admin.actions import ReadOnlyAdmin, confirmed_action
from registry.admin.site import admin_site
from registry.errors import DomainError
from registry.models import Vault
from registry.portal.errors import explain_reason
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
    readonly_fields = ["deliverability", "history", "records"]
    actions = [
        "server_hold",
        "release_server_hold",
        "close",
        "set_registry_lock",
        "clear_registry_lock",
    ]

    @admin.display(description=_("number"), ordering="number")
    def display(self, vault: Vault) -> str:
        return numbers.format_display(vault.number)

    @admin.display(description=_("Deliverable now, as proven"))
    def deliverability(self, vault: Vault) -> str:
        """What an issuer is told now: the lookup proven from the state map at the checkpoint
        served (``directory.proven``), with its reasons, not the table's row."""
        try:
            answer = proven.lookup(vault.number)
        except DomainError as exc:
            return format_html("{} ({})", exc.detail, exc.code)
        size = answer.checkpoint.size
        if answer.status == 410:
            return format_html(
                '<span class="deliverable-no">{}</span> {}',
                _("No: closed (410 Gone)."),
                _("checkpoint of log size %(size)s") % {"size": size},
            )
        if answer.status == 404:
            return _("Not yet in the checkpoint served (log size %(size)s).") % {"size": size}
        fields = answer.fields
        if fields["deliverable"]:
            verdict = format_html('<span class="deliverable-yes">{}</span>', _("Yes"))
        else:
            verdict = format_html(
                '<span class="deliverable-no">{}</span>: {}',
                _("No"),
                "; ".join(f"{reason} — {explain_reason(reason)}" for reason in fields["reasons"]),
            )
        return format_html(
            "{} — {} {} · {}",
            verdict,
            _("provider"),
            fields["provider"]["legal_name"],
            _("checkpoint of log size %(size)s") % {"size": size},
        )

    @admin.display(description=_("Log history"))
    def history(self, vault: Vault) -> str:
        """Every log entry naming the vault (``directory.history``), oldest first."""
        rows = format_html_join(
            "",
            '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>',
            (
                (
                    reverse("admin:registry_logentry_change", args=[item["log_index"]]),
                    item["log_index"],
                    item["kind"],
                    item["at"],
                    item["provider"] or "",
                )
                for item in directory_history.vault_history(vault.number)
            ),
        )
        return format_html(
            "<table><tr><th>#</th><th>{}</th><th>{}</th><th>{}</th></tr>{}</table>",
            _("kind"),
            _("at (UTC, as logged)"),
            _("provider"),
            rows,
        )

    @admin.display(description=_("Its records"))
    def records(self, vault: Vault) -> str:
        """Links to the vault's provider, transfers and audit events."""
        return format_html(
            '<a href="{}">{}</a> · <a href="{}?q={}">{}</a> · '
            '<a href="{}?target_type=vault&amp;target_id={}">{}</a>',
            reverse("admin:registry_provider_change", args=[vault.provider_id]),
            _("provider"),
            reverse("admin:registry_transfer_changelist"),
            vault.number,
            _("transfers"),
            reverse("admin:registry_auditevent_changelist"),
            vault.number,
            _("audit events"),
        )

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
