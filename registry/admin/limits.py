"""An issuer's own rate limits, changed from its admin page with a reason (audited by the
service ``organisations.issuer_set_limits``)."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from registry.errors import DomainError
from registry.models import Issuer
from registry.services import organisations
from registry.services.common import Actor


def effective(value: int | None, default: int) -> str:
    """How a limit reads: its value, the default it falls back to, or none."""
    if value is None:
        value, suffix = default, _(" (default)")
    else:
        suffix = ""
    return f"{value}{suffix}" if value else f"{_('no limit')}{suffix}"


def in_force(issuer: Issuer) -> dict[str, str]:
    """The issuer's two limits as they read (``effective``)."""
    return {
        "lookups": effective(issuer.rate_lookups_per_minute, settings.VAULT_RATE_LOOKUP_PER_MINUTE),
        "plans": effective(
            issuer.rate_plan_numbers_per_minute, settings.VAULT_RATE_PLAN_NUMBERS_PER_MINUTE
        ),
    }


class LimitsForm(forms.Form):
    rate_lookups_per_minute = forms.IntegerField(
        label=_("Lookups per minute and token"),
        required=False,
        min_value=0,
        max_value=organisations.MAX_RATE_PER_MINUTE,
    )
    rate_plan_numbers_per_minute = forms.IntegerField(
        label=_("Routing-plan numbers per minute and token"),
        required=False,
        min_value=0,
        max_value=organisations.MAX_RATE_PER_MINUTE,
    )
    reason = forms.CharField(
        label=_("Reason"),
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        max_length=2000,
        help_text=_("Kept in the audit trail with your name."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        defaults = {
            "rate_lookups_per_minute": settings.VAULT_RATE_LOOKUP_PER_MINUTE,
            "rate_plan_numbers_per_minute": settings.VAULT_RATE_PLAN_NUMBERS_PER_MINUTE,
        }
        for name, default in defaults.items():
            self.fields[name].help_text = _(
                "Empty: the registry's default (%(default)s). 0: no limit."
            ) % {"default": default}


def limits_view(modeladmin, request, object_id: str):
    """GET: the issuer's limits in a form; POST: change them through the service, then back to
    the issuer's page with what changed."""
    if not request.user.has_perm("registry.change_issuer"):
        raise PermissionDenied
    issuer = Issuer.objects.filter(pk=object_id).first()
    if issuer is None:
        raise Http404
    if request.method == "POST":
        form = LimitsForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                changed = organisations.issuer_set_limits(
                    actor=Actor.for_user(request.user),
                    issuer=issuer,
                    lookups_per_minute=data["rate_lookups_per_minute"],
                    plan_numbers_per_minute=data["rate_plan_numbers_per_minute"],
                    reason=data["reason"],
                )
            except DomainError as exc:
                form.add_error(None, f"{exc.detail} ({exc.code})")
            else:
                _report(modeladmin, request, issuer, changed)
                return HttpResponseRedirect(
                    reverse("admin:registry_issuer_change", args=[issuer.pk])
                )
    else:
        fields = organisations.LIMIT_FIELDS
        form = LimitsForm(initial={field: getattr(issuer, field) for field in fields})
    return TemplateResponse(
        request,
        "admin/registry/issuer_limits.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": _("Rate limits of %(issuer)s") % {"issuer": issuer},
            "form": form,
            "issuer": issuer,
            "opts": Issuer._meta,
            "token_cache_seconds": settings.VAULT_TOKEN_CACHE_SECONDS,
        },
    )


def _report(modeladmin, request, before: Issuer, after: Issuer) -> None:
    if all(getattr(before, f) == getattr(after, f) for f in organisations.LIMIT_FIELDS):
        modeladmin.message_user(request, _("The limits were already these: nothing changed."))
        return
    modeladmin.message_user(
        request,
        _("Limits set: %(lookups)s lookups, %(plans)s plan numbers per minute and token.")
        % in_force(after),
        messages.SUCCESS,
    )
    plan_limit = after.rate_plan_numbers_per_minute
    if plan_limit is None:
        plan_limit = settings.VAULT_RATE_PLAN_NUMBERS_PER_MINUTE
    if 0 < plan_limit < settings.VAULT_PLAN_MAX_NUMBERS:
        modeladmin.message_user(
            request,
            _(
                "A routing plan costs its number count: plans of more than %(limit)s numbers "
                "are now always refused for this issuer (429)."
            )
            % {"limit": plan_limit},
            messages.WARNING,
        )
