"""What every admin class shares: read-only records, and actions that ask for a reason and a
confirmation before calling a service for each record selected."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import models
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from registry.errors import DomainError

SAMPLE = 20  # records named on a confirmation page; the others are counted


def _done(what, count: int) -> str:
    """ "Closed: 3." (French puts a space before the colon)."""
    return _("%(what)s: %(count)s.") % {"what": what, "count": count}


class ConfirmForm(forms.Form):
    """The second step of every destructive or mass-impact action: a reason, and the number of
    records the admin saw, so a selection that changed in between is shown again."""

    reason = forms.CharField(
        label=_("Reason"),
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        max_length=2000,
        help_text=_("Kept in the audit trail with your name."),
    )
    expected = forms.IntegerField(widget=forms.HiddenInput, min_value=0)


def confirmed_action(*, description, title, impact=None):
    """An admin action that runs only after a page stating what it will do, and a reason.

    ``impact(queryset)`` returns the lines of that statement (how many vaults become
    undeliverable…); the decorated ``apply(modeladmin, request, queryset, reason)`` runs on
    confirmation. The page posts back the changelist's query (its URL keeps the filters and
    search, and ``select_across`` says "every record of the query"), never one field per
    record: "select all 10,000" stays a small request.
    """

    def decorate(apply):
        def action(modeladmin, request, queryset):
            return modeladmin.confirm(
                request, queryset, apply=apply, name=apply.__name__, title=title, impact=impact
            )

        action.__name__ = apply.__name__
        action.__doc__ = apply.__doc__
        return admin.action(description=description)(action)

    return decorate


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
            self.message_user(request, _done(success, done), messages.SUCCESS)
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
        **context,
    ):
        count = queryset.count()
        sample = list(queryset[:SAMPLE])
        return TemplateResponse(
            request,
            template,
            {
                **self.admin_site.each_context(request),
                "title": title,
                "form": form,
                "count": count,
                "sample": sample,
                "more": count - len(sample),
                "action": action,
                "opts": self.model._meta,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                # What the changelist posted: its own page of ids (at most list_per_page, or
                # list_max_show_all) and whether "select all" covers the whole query.
                "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
                "select_across": request.POST.get("select_across", "0"),
                **context,
            },
        )

    def confirm(self, request, queryset, *, apply, name: str, title, impact):
        """The confirmation page of ``confirmed_action``, and the action once confirmed."""
        count = queryset.count()
        if count > settings.VAULT_ADMIN_BULK_MAX:
            self.message_user(
                request,
                _(
                    "%(count)s records selected; one action handles at most %(max)s. "
                    "Narrow the list with its filters or search."
                )
                % {"count": count, "max": settings.VAULT_ADMIN_BULK_MAX},
                messages.ERROR,
            )
            return None
        if "apply" in request.POST:
            form = ConfirmForm(request.POST)
            if form.is_valid():
                if form.cleaned_data["expected"] == count:
                    apply(self, request, queryset, form.cleaned_data["reason"].strip())
                    return None
                data = request.POST.copy()
                data["expected"] = str(count)
                form = ConfirmForm(data)
                form.is_valid()
                form.add_error(
                    None,
                    _(
                        "The selection changed since this page was shown: %(count)s records "
                        "now. Check what the action will do and confirm again."
                    )
                    % {"count": count},
                )
        else:
            form = ConfirmForm(initial={"expected": count})
        return self._form_page(
            request,
            queryset,
            form,
            title=title,
            action=name,
            impact=impact(queryset) if impact else [],
            confirm=True,
        )

    def report(self, request, outcome, success) -> None:
        """Say what a batch service did: how many changed, and why the others did not."""
        if outcome.changed:
            self.message_user(request, _done(success, outcome.changed), messages.SUCCESS)
        if outcome.refused:
            refused = ", ".join(f"{code}: {n}" for code, n in sorted(outcome.refused.items()))
            self.message_user(
                request, _("Not changed: %(refused)s.") % {"refused": refused}, messages.WARNING
            )
