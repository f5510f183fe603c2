"""The federation admins' site: Django admin behind a TOTP second factor (django-otp).

Records are read-only here; every change is an admin action that calls a service, so the admin
cannot skip validation, the log or the audit trail. Nothing can be deleted.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.db import models
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin
from django_otp.plugins.otp_totp.models import TOTPDevice

from registry import numbers
from registry.errors import DomainError
from registry.models import (
    ApiToken,
    AuditEvent,
    Certificate,
    Endpoint,
    Issuer,
    IssuerStatusChange,
    IssuerUsage,
    LogEntry,
    Message,
    OrganisationStatus,
    Provider,
    ProviderStatusChange,
    Transfer,
    TransferCode,
    Vault,
    Webhook,
)
from registry.services import organisations, routing, tokens, transfers, vaults
from registry.services.common import Actor
from registry.services.vaults import HoldKind


class AdminLoginForm(OTPAdminAuthenticationForm):
    """Password and TOTP code in one step when the admin has exactly one device.

    django-otp asks to pick a device first so that a guess is never counted against every
    device; with a single confirmed device there is nothing to pick.
    """

    def _chosen_device(self, user):
        device = super()._chosen_device(user)
        if device is None:
            # Locked, as django-otp loads a chosen device (for_verify): two logins racing with
            # the same code are serialised by the throttling and replay checks.
            devices = list(
                TOTPDevice.objects.devices_for_user(user, confirmed=True).select_for_update()[:2]
            )
            if len(devices) == 1:
                device = devices[0]
        return device


class RegistryAdminSite(OTPAdminSite):
    login_form = AdminLoginForm
    site_header = "Vault Registry: federation administration"
    site_title = "Vault Registry admin"
    index_title = "Federation"


admin_site = RegistryAdminSite(name="admin")
admin_site.register(User, UserAdmin)
admin_site.register(Group, GroupAdmin)
admin_site.register(TOTPDevice, TOTPDeviceAdmin)


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 60}), max_length=2000)


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, initial="API token")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["expires_in_days"] = forms.IntegerField(
            min_value=1, max_value=settings.VAULT_TOKEN_MAX_DAYS, initial=90
        )


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records change only through actions (services): no add, no edit, no delete."""

    # The (read-only) forms still build URL fields: name the scheme Django 6 will assume.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def _run(self, request, queryset, service, success: str) -> int:
        """Call ``service(obj)`` for each selected record; report refusals without stopping."""
        done = 0
        for obj in queryset:
            try:
                service(obj)
            except DomainError as exc:
                self.message_user(request, f"{obj}: {exc.detail} ({exc.code})", messages.ERROR)
            else:
                done += 1
        if done:
            self.message_user(request, f"{success}: {done}.", messages.SUCCESS)
        return done

    def _form_page(
        self,
        request,
        queryset,
        form,
        *,
        title: str,
        action: str,
        template: str = "admin/registry/action_form.html",
    ):
        return TemplateResponse(
            request,
            template,
            {
                **self.admin_site.each_context(request),
                "title": title,
                "form": form,
                "queryset": queryset,
                "action": action,
                "opts": self.model._meta,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            },
        )

    def _with_reason(
        self, request, queryset, service, *, action: str, title: str, success: str, **arguments
    ):
        """An action that first asks for a reason, then calls ``service`` for each record
        selected: ``service(actor=…, <model name>=record, reason=…, **arguments)``."""
        if "apply" in request.POST:
            form = ReasonForm(request.POST)
            if form.is_valid():
                actor = Actor.for_user(request.user)
                field = self.model._meta.model_name
                self._run(
                    request,
                    queryset,
                    lambda obj: service(
                        actor=actor,
                        **{field: obj},
                        reason=form.cleaned_data["reason"],
                        **arguments,
                    ),
                    success,
                )
                return None
        else:
            form = ReasonForm()
        return self._form_page(request, queryset, form, title=title, action=action)


def _status_action(status: str, verb: str):
    def action(modeladmin, request, queryset):
        return modeladmin.change_status(request, queryset, status, verb, action.__name__)

    action.__name__ = f"make_{status}"
    action.short_description = f"{verb.capitalize()} selected (asks for a reason)"
    return action


class StatusChangeInline(admin.TabularInline):
    extra = 0
    can_delete = False
    fields = ["created_at", "from_status", "to_status", "effective_at", "actor", "reason"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class ProviderStatusChangeInline(StatusChangeInline):
    model = ProviderStatusChange


class IssuerStatusChangeInline(StatusChangeInline):
    model = IssuerStatusChange


class OrganisationAdmin(ReadOnlyAdmin):
    list_display = ["legal_name", "legal_id", "status", "status_changed_at", "created_at"]
    list_filter = ["status"]
    search_fields = ["legal_name", "legal_id"]
    actions = [
        _status_action(OrganisationStatus.ACTIVE, "approve / reinstate"),
        _status_action(OrganisationStatus.REJECTED, "reject"),
        _status_action(OrganisationStatus.SUSPENDED, "suspend"),
        _status_action(OrganisationStatus.WITHDRAWN, "withdraw"),
        "create_token",
    ]
    set_status = None  # the service, set by subclasses

    def change_status(self, request, queryset, status, verb, action):
        return self._with_reason(
            request,
            queryset,
            type(self).set_status,
            action=action,
            title=f"{verb.capitalize()}: give a reason",
            success=f"Status set to {status}",
            status=status,
        )

    @admin.action(description="Create an API token (shown once)")
    def create_token(self, request, queryset):
        if "apply" in request.POST:
            form = TokenForm(request.POST)
            if form.is_valid():
                created, refused = [], []
                for owner in queryset:
                    try:
                        token, value = tokens.token_create(
                            actor=Actor.for_user(request.user),
                            owner=owner,
                            name=form.cleaned_data["name"],
                            expires_in_days=form.cleaned_data["expires_in_days"],
                        )
                    except DomainError as exc:
                        refused.append(f"{owner}: {exc.detail}")
                    else:
                        created.append((owner, token, value))
                for message in refused:
                    self.message_user(request, message, messages.ERROR)
                if not created:
                    return None
                response = TemplateResponse(
                    request,
                    "admin/registry/token_created.html",
                    {
                        **self.admin_site.each_context(request),
                        "title": "Token created",
                        "created": created,
                        "opts": self.model._meta,
                    },
                )
                response["Cache-Control"] = "no-store"
                return response
        else:
            form = TokenForm()
        return self._form_page(
            request, queryset, form, title="Create an API token", action="create_token"
        )


@admin.register(Provider, site=admin_site)
class ProviderAdmin(OrganisationAdmin):
    inlines = [ProviderStatusChangeInline]
    set_status = staticmethod(organisations.provider_set_status)


class EnumerationSuspectedFilter(admin.SimpleListFilter):
    """Issuers flagged by registry.services.usage for asking mostly unknown numbers."""

    title = "enumeration suspected"
    parameter_name = "enumeration"

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):
        if self.value() in {"yes", "no"}:
            return queryset.filter(enumeration_suspected_at__isnull=self.value() == "no")
        return queryset


@admin.register(Issuer, site=admin_site)
class IssuerAdmin(OrganisationAdmin):
    list_display = [
        *OrganisationAdmin.list_display,
        "rate_lookups_per_minute",
        "rate_plan_numbers_per_minute",
        "enumeration_suspected_at",
    ]
    list_filter = ["status", EnumerationSuspectedFilter]
    inlines = [IssuerStatusChangeInline]
    set_status = staticmethod(organisations.issuer_set_status)


@admin.register(IssuerUsage, site=admin_site)
class IssuerUsageAdmin(ReadOnlyAdmin):
    """What each issuer asked, per minute and purpose (registry.usage): read-only."""

    list_display = ["minute", "issuer", "purpose", "lookups", "numbers", "unknown"]
    list_filter = ["purpose", "issuer", ("minute", admin.DateFieldListFilter)]
    list_select_related = ["issuer"]
    date_hierarchy = "minute"


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
    search_fields = ["vault__number", "consent_reference"]
    show_full_result_count = False
    exclude = ["code"]
    actions = ["server_cancel", "server_approve"]

    @admin.display(description="vault", ordering="vault")
    def vault_display(self, transfer: Transfer) -> str:
        return numbers.format_display(transfer.vault_id)

    def get_search_results(self, request, queryset, search_term):
        term = numbers.compact(search_term)
        if term:
            return queryset.filter(vault_id__startswith=term), False
        return super().get_search_results(request, queryset, search_term)

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


@admin.register(Message, site=admin_site)
class MessageAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "provider",
        "kind",
        "created_at",
        "acked_at",
        "delivery_state",
        "delivery_attempts",
        "next_delivery_at",
    ]
    list_filter = ["kind", "delivery_state"]
    list_select_related = ["provider"]
    show_full_result_count = False


@admin.register(Webhook, site=admin_site)
class WebhookAdmin(ReadOnlyAdmin):
    list_display = ["url", "provider", "created_at", "removed_at", "last_success_at"]
    list_select_related = ["provider"]
    exclude = ["secret"]


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


@admin.register(LogEntry, site=admin_site)
class LogEntryAdmin(ReadOnlyAdmin):
    list_display = ["sequence", "kind", "created_at"]
    list_filter = ["kind"]
    show_full_result_count = False
    fields = ["sequence", "kind", "created_at", "canonical_json", "leaf_hash_hex"]
    readonly_fields = fields

    @admin.display(description="canonical JSON (RFC 8785)")
    def canonical_json(self, entry: LogEntry) -> str:
        return format_html("<code>{}</code>", bytes(entry.body).decode())

    @admin.display(description="leaf hash (SHA-256)")
    def leaf_hash_hex(self, entry: LogEntry) -> str:
        return bytes(entry.leaf_hash).hex()


@admin.register(AuditEvent, site=admin_site)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "actor", "action", "target_type", "target_id", "log_sequence"]
    list_filter = ["action", "target_type"]
    search_fields = ["actor", "target_id"]
    show_full_result_count = False
