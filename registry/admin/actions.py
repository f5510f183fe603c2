"""What every admin class shares: read-only records, and actions that ask for a reason and a
confirmation before calling a service for each record selected."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import models
from django.template.response import TemplateResponse

from registry.errors import DomainError
from registry.services.common import Actor


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 60}), max_length=2000)


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
