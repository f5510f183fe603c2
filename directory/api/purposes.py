"""The ``purpose`` an issuer names on a lookup or a routing plan: one of the registry's
purposes (which are the document types endpoints declare) and one its organisation may use."""

from __future__ import annotations

from registry.errors import ErrorCode, Forbidden, InvalidInput
from registry.models.organisations import Purpose


def purpose_parameter(request) -> str:
    """The raw ``purpose`` of a request ('' when absent); its query string is parsed only if
    there is one (most lookups have none)."""
    if not request.META.get("QUERY_STRING"):
        return ""
    return request.GET.get("purpose", "")


def purpose_asked(request) -> str:
    """The purpose asked ('' for none), checked: 400 ``validation_error`` for an unknown one,
    403 ``purpose_not_allowed`` for one the issuer may not use. A member registry asking on
    behalf of its issuer checked that issuer itself."""
    purpose = purpose_parameter(request)
    if not purpose:
        return ""
    if purpose not in Purpose.values:
        raise InvalidInput(
            ErrorCode.VALIDATION_ERROR,
            f"Unknown purpose; known: {', '.join(Purpose.values)}.",
        )
    issuer = getattr(request.user, "issuer", None)
    if issuer is None:  # a member registry (PeerPrincipal)
        return purpose
    if purpose not in issuer.purposes:
        raise Forbidden(
            ErrorCode.PURPOSE_NOT_ALLOWED,
            "Your organisation is not allowed to resolve numbers for this purpose.",
        )
    return purpose
