"""The federation admins' site: Django admin behind a TOTP second factor (django-otp).

Records are read-only here; every change is an admin action that calls a service, so the admin
cannot skip validation, the log or the audit trail. Nothing can be deleted.

One module per entity; ``actions`` holds the shared reason-and-confirm helper every action uses.
"""

from registry.admin import (  # noqa: F401  (each module registers its models)
    federation,
    log,
    messages,
    organisations,
    routing,
    tokens,
    transfers,
    vaults,
)
from registry.admin.site import admin_site

__all__ = ["admin_site"]
