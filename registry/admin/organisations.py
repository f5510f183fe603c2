"""Providers and issuers: status changes with a reason, API tokens shown once."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.template.response import TemplateResponse

from registry.admin.actions import ReadOnlyAdmin
from registry.admin.site import admin_site
from registry.errors import DomainError
from registry.models import (
    Issuer,
    IssuerStatusChange,
    OrganisationStatus,
    Provider,
    ProviderStatusChange,
)
from registry.services import organisations, tokens
from registry.services.common import Actor


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, initial="API token")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["expires_in_days"] = forms.IntegerField(
            min_value=1, max_value=settings.VAULT_TOKEN_MAX_DAYS, initial=90
        )


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


@admin.register(Issuer, site=admin_site)
class IssuerAdmin(OrganisationAdmin):
    inlines = [IssuerStatusChangeInline]
    set_status = staticmethod(organisations.issuer_set_status)
