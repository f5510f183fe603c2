"""System checks (``manage.py check``, and every ``migrate``): settings that still work but
should change."""

from __future__ import annotations

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security)
def deprecated_trusted_proxies(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """VAULT_TRUSTED_PROXIES (the rate limits' own list once) is read only without
    TRUSTED_PROXIES, the one list every use of the client's address now shares."""
    old = getattr(settings, "DEPRECATED_TRUSTED_PROXIES", [])
    if not old:
        return []
    if list(settings.TRUSTED_PROXIES) == list(old):
        message = "VAULT_TRUSTED_PROXIES is deprecated and read in place of TRUSTED_PROXIES."
        hint = "Rename it TRUSTED_PROXIES (the list also covers request ids and /metrics)."
    else:
        message = "VAULT_TRUSTED_PROXIES is deprecated and ignored: TRUSTED_PROXIES is set."
        hint = "Remove VAULT_TRUSTED_PROXIES; list every proxy in TRUSTED_PROXIES."
    return [checks.Warning(message, hint=hint, id="registry.W001")]
