"""The admin site: password and TOTP code at login, Django's own users, groups and devices."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin
from django_otp.plugins.otp_totp.models import TOTPDevice

from registry.services import staff
from registry.services.common import Actor


class AdminLoginForm(OTPAdminAuthenticationForm):
    """Password and TOTP code in one step, and one error whichever was wrong.

    django-otp says "enter your code" once the password is right, and lists the user's devices:
    both tell a guesser the password was right. Here every failure answers the same message,
    the device list is never filled in (a code is tried against the user's devices, as
    django-otp does without a choice), and a wrong code after a right password counts as a
    failed login for django-axes' throttling.
    """

    error_messages = {
        **OTPAdminAuthenticationForm.error_messages,
        "invalid_login": _(
            "Enter the correct username, password and authentication code of a staff account. "
            "The username and password are case-sensitive."
        ),
    }

    def clean(self):
        try:
            return super().clean()
        except ValidationError:
            if self.user_cache is not None:  # the password was right, the code was not
                user_login_failed.send(
                    sender=type(self),
                    credentials={"username": self.cleaned_data.get("username")},
                    request=self.request,
                )
                self.user_cache = None
            raise ValidationError(
                self.error_messages["invalid_login"],
                code="invalid_login",
                params={"username": self.username_field.verbose_name},
            ) from None

    def _update_form(self, user):
        """Leave the device list empty (django-otp fills it in once the password is right)."""

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
    site_header = _("Vault Registry: federation administration")
    site_title = _("Vault Registry admin")
    index_title = _("Federation")
    index_template = "admin/registry/index.html"

    def index(self, request, extra_context=None):
        """The start page: the work waiting, with links to the lists that hold it."""
        from directory import checkpoints
        from directory.federation import members
        from registry import selectors
        from registry.portal.errors import explain_reason

        checkpoint = checkpoints.serving()
        queue = selectors.work_queue()
        context = {
            "queue": queue,
            "undeliverable_reasons": [
                (reason, explain_reason(reason), count)
                for reason, count in queue["undeliverable_by_reason"].items()
            ],
            "checkpoint": checkpoint,
            "checkpoint_age": timezone.now() - checkpoint.created_at if checkpoint else None,
            "witnesses": members.witnesses(),  # VAULT_WITNESSES, or the federation's peers
            "federation": members.current(),
            "quorum": settings.VAULT_WITNESS_QUORUM,
            "soon": (timezone.now() + timedelta(days=30)).strftime("%Y-%m-%d"),
            **(extra_context or {}),
        }
        return super().index(request, context)


class AuditedAdmin(admin.ModelAdmin):
    """Django's own forms for staff accounts and their devices, every change audited through
    ``services.staff`` (the admin's hooks run in the transaction of the change)."""

    def log_addition(self, request, obj, message):
        staff.staff_change_audit(
            actor=Actor.for_user(request.user), target=obj, change="created", message=message
        )
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        staff.staff_change_audit(
            actor=Actor.for_user(request.user), target=obj, change="changed", message=message
        )
        return super().log_change(request, obj, message)

    def log_deletions(self, request, queryset):
        staff.staff_deletions_audit(actor=Actor.for_user(request.user), targets=queryset)
        return super().log_deletions(request, queryset)


class StaffUserAdmin(AuditedAdmin, UserAdmin):
    pass


class StaffGroupAdmin(AuditedAdmin, GroupAdmin):
    pass


class AuditedTOTPDeviceAdmin(AuditedAdmin, TOTPDeviceAdmin):
    """Devices without their secret (``OTP_ADMIN_HIDE_SENSITIVE_DATA``), changes audited."""


admin_site = RegistryAdminSite(name="admin")
admin_site.register(User, StaffUserAdmin)
admin_site.register(Group, StaffGroupAdmin)
admin_site.register(TOTPDevice, AuditedTOTPDeviceAdmin)
