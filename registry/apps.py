from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_totp.apps import DefaultConfig as TOTPDefaultConfig


class RegistryConfig(AppConfig):
    """The book of record: organisations, vaults, routing, tokens and the log."""

    name = "registry"
    default = True  # this module holds another AppConfig (TOTPConfig)
    verbose_name = _("Vault Registry")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from registry import checks  # noqa: F401  (registers the system checks)
        from registry.api import schema  # noqa: F401  (registers the OpenAPI auth extension)


class TOTPConfig(TOTPDefaultConfig):
    """django-otp's TOTP devices, with a name in the admin's language (the app has none)."""

    default = False
    verbose_name = _("Authenticator apps (TOTP)")
