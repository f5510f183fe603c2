"""Providers and issuers: status changes with a reason, API tokens shown once."""

from __future__ import annotations

import functools

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from registry import selectors
from registry.admin import limits, token_pages
from registry.admin.actions import ReadOnlyAdmin, confirmed_action
from registry.admin.site import admin_site
from registry.errors import DomainError
from registry.models import (
    AuditEvent,
    Issuer,
    IssuerStatusChange,
    IssuerUsage,
    OrganisationStatus,
    Provider,
    ProviderStatusChange,
)
from registry.services import organisations, tokens
from registry.services.common import Actor


class TokenForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100, initial=_("API token"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["expires_in_days"] = forms.IntegerField(
            label=_("Lifetime in days"),
            min_value=1,
            max_value=settings.VAULT_TOKEN_MAX_DAYS,
            initial=90,
        )


def _status_action(status: str, verb: str, description: str):
    """The action that moves the selected organisations to ``status``, after a confirmation
    page that says how many vaults stop (or start) being deliverable."""

    def impact(queryset) -> list[str]:
        lines = [
            ngettext(
                "%(count)s organisation moves to %(status)s.",
                "%(count)s organisations move to %(status)s.",
                n := queryset.count(),
            )
            % {"count": n, "status": OrganisationStatus(status).label}
        ]
        if queryset.model is Provider and status != OrganisationStatus.ACTIVE:
            lost = selectors.undeliverable_if_providers_stop(queryset)
            lines.append(
                ngettext(
                    "%(count)s vault deliverable now becomes undeliverable.",
                    "%(count)s vaults deliverable now become undeliverable.",
                    lost,
                )
                % {"count": lost}
            )
        return lines

    def apply(modeladmin, request, queryset, reason):
        actor = Actor.for_user(request.user)
        service = type(modeladmin).set_status
        field = modeladmin.model._meta.model_name
        modeladmin._run(
            request,
            queryset,
            lambda org: service(actor=actor, **{field: org}, status=status, reason=reason),
            _("Status set to %(status)s") % {"status": OrganisationStatus(status).label},
        )

    apply.__name__ = f"make_{status}"
    return confirmed_action(description=description, title=verb, impact=impact)(apply)


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
        _status_action(
            OrganisationStatus.ACTIVE,
            _("Approve or reinstate"),
            _("Approve / reinstate selected (asks for a reason)"),
        ),
        _status_action(
            OrganisationStatus.REJECTED, _("Reject"), _("Reject selected (asks for a reason)")
        ),
        _status_action(
            OrganisationStatus.SUSPENDED, _("Suspend"), _("Suspend selected (asks for a reason)")
        ),
        _status_action(
            OrganisationStatus.WITHDRAWN,
            _("Withdraw for good"),
            _("Withdraw selected, for good (asks for a reason)"),
        ),
        "create_token",
    ]
    set_status = None  # the service, set by subclasses

    @admin.action(description=_("Create an API token (shown once)"))
    def create_token(self, request, queryset):
        """Create the tokens, then redirect (POST/redirect/GET) to a page that shows them once:
        reloading that page never creates another token."""
        if "apply" in request.POST:
            form = TokenForm(request.POST)
            if form.is_valid():
                created = []
                for owner in queryset:
                    try:
                        token, value = tokens.token_create(
                            actor=Actor.for_user(request.user),
                            owner=owner,
                            name=form.cleaned_data["name"],
                            expires_in_days=form.cleaned_data["expires_in_days"],
                        )
                    except DomainError as exc:
                        self.message_user(request, f"{owner}: {exc.detail}", messages.ERROR)
                    else:
                        created.append((owner, token, value))
                if not created:
                    return None
                key = token_pages.keep(request, created)
                return HttpResponseRedirect(reverse("admin:registry_apitoken_created", args=[key]))
        else:
            form = TokenForm()
        return self._form_page(
            request, queryset, form, title=_("Create an API token"), action="create_token"
        )


def _link(name: str, query: str, label, count: int | None = None) -> str:
    url = reverse(f"admin:registry_{name}_changelist")
    if count is None:
        return format_html('<a href="{}?{}">{}</a>', url, query, label)
    return format_html('<a href="{}?{}">{} ({})</a>', url, query, label, count)


@admin.register(Provider, site=admin_site)
class ProviderAdmin(OrganisationAdmin):
    inlines = [ProviderStatusChangeInline]
    set_status = staticmethod(organisations.provider_set_status)
    readonly_fields = ["records"]

    @admin.display(description=_("Its records"))
    def records(self, provider: Provider) -> str:
        """Links to the provider's vaults, endpoints, certificates, tokens and audit events."""
        mine = f"provider__id__exact={provider.pk}"
        links = [
            _link("vault", mine, _("vaults"), provider.vaults.count()),
            _link("endpoint", mine, _("endpoints"), provider.endpoints.count()),
            _link("certificate", mine, _("certificates"), provider.certificates.count()),
            _link("apitoken", mine, _("API tokens"), provider.tokens.count()),
            _link(
                "auditevent",
                f"target_type=provider&target_id={provider.pk}",
                _("audit events"),
                AuditEvent.objects.filter(target_type="provider", target_id=str(provider.pk))
                .order_by()
                .count(),
            ),
            _link("logentry", f"q={provider.pk}", _("log entries naming it")),
        ]
        return format_html_join(" · ", "{}", ((link,) for link in links))


class EnumerationSuspectedFilter(admin.SimpleListFilter):
    """Issuers flagged by registry.services.usage for asking mostly unknown numbers."""

    title = _("enumeration suspected")
    parameter_name = "enumeration"

    def lookups(self, request, model_admin):
        return [("yes", _("Yes")), ("no", _("No"))]

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
    readonly_fields = ["rate_limits"]

    def get_urls(self):
        page = path(
            "<path:object_id>/limits/",
            self.admin_site.admin_view(functools.partial(limits.limits_view, self)),
            name="registry_issuer_limits",
        )
        return [page, *super().get_urls()]

    @admin.display(description=_("Rate limits in force"))
    def rate_limits(self, issuer: Issuer) -> str:
        """The limits the issuer's tokens get, and the page that changes them."""
        return format_html(
            "{lookups} lookups, {plans} plan numbers per minute and token · "
            '<a href="{url}">{label}</a>',
            **limits.in_force(issuer),
            url=reverse("admin:registry_issuer_limits", args=[issuer.pk]),
            label=_("Change the rate limits"),
        )


@admin.register(IssuerUsage, site=admin_site)
class IssuerUsageAdmin(ReadOnlyAdmin):
    """What each issuer asked, per minute and purpose (registry.usage): read-only."""

    list_display = ["minute", "issuer", "purpose", "lookups", "numbers", "unknown"]
    list_filter = ["purpose", "issuer", ("minute", admin.DateFieldListFilter)]
    list_select_related = ["issuer"]
    date_hierarchy = "minute"
