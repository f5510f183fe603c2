"""Template context: the signed-in member (if any) for the portal's navigation."""

from __future__ import annotations


def portal(request) -> dict[str, object]:
    user = getattr(request, "user", None)
    membership = getattr(user, "membership", None) if user and user.is_authenticated else None
    return {"membership": membership}
