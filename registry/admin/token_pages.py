"""The "token created" page, reached by a redirect after the POST that created the tokens.

The values wait in the admin's session under a one-time key and are removed the first time the
page is shown: reloading it shows that they were already shown, and never creates a token.
"""

from __future__ import annotations

import secrets

from django.template.response import TemplateResponse
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _

from registry.models import ApiToken

_SESSION_PREFIX = "registry.admin.token:"


def keep(request, created) -> str:
    """Keep ``(owner, token, value)`` triples for one showing; returns the page's key."""
    key = secrets.token_urlsafe(16)
    request.session[_SESSION_PREFIX + key] = [
        {
            "owner": str(owner),
            "token": str(token.pk),
            "name": token.name,
            "scope": str(token.get_scope_display()),
            "expires_at": token.expires_at.isoformat(),
            "value": value,
        }
        for owner, token, value in created
    ]
    return key


def created_view(request, key: str):
    """Show the kept values once (no-store), then forget them."""
    from registry.admin.site import admin_site

    shown = request.session.pop(_SESSION_PREFIX + key, None)
    created = [{**item, "expires_at": parse_datetime(item["expires_at"])} for item in shown or []]
    response = TemplateResponse(
        request,
        "admin/registry/token_created.html",
        {
            **admin_site.each_context(request),
            "title": _("Token created") if created else _("Token already shown"),
            "created": created,
            "opts": ApiToken._meta,
        },
        status=200 if created else 410,
    )
    response["Cache-Control"] = "no-store"
    return response
