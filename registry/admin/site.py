"""The admin site: password and TOTP code at login, Django's own users, groups and devices."""

from __future__ import annotations

from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin
from django_otp.plugins.otp_totp.models import TOTPDevice


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
