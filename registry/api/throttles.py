"""Per-address limits on the public endpoints, counted in the shared cache (registry.ratelimit)."""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from registry import ratelimit
from registry.proxies import client_address

# scope -> (setting with the limit, window in seconds)
SCOPES = {
    "public": ("VAULT_RATE_PUBLIC_PER_MINUTE", 60),
    "applications": ("VAULT_RATE_APPLICATIONS_PER_HOUR", 3600),
}


class AddressRateThrottle(BaseThrottle):
    """The view's ``address_rate_scope`` (default ``public``) per client address, which
    X-Forwarded-For names only when a trusted proxy sent it (TRUSTED_PROXIES). Over the
    limit: 429 ``rate_limited`` with Retry-After and the RateLimit headers."""

    def allow_request(self, request, view) -> bool:
        scope = getattr(view, "address_rate_scope", "public")
        setting, period = SCOPES[scope]
        ratelimit.charge_address(request, scope, getattr(settings, setting), period)
        return True

    def get_ident(self, request) -> str:
        return client_address(request)
