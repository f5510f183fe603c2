"""Installing a federation document: signed by a pinned federation key, with a higher serial."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from directory.federation import members
from directory.federation.models import FederationDocument
from directory.transparency import federation as fed
from registry.errors import ErrorCode, InvalidInput
from registry.services.common import Actor, record_audit


@transaction.atomic
def federation_document_install(*, actor: Actor, signed: str) -> FederationDocument:
    """Accept ``signed`` as the federation document in force: it must verify against the
    pinned federation keys (``VAULT_FEDERATION_KEYS``) and carry a serial above the installed
    one (an old document is never re-installed). Audited; peers come from it at once."""
    try:
        document = fed.verify(signed, members.pinned_keys())
        current_row = FederationDocument.objects.select_for_update().order_by("-serial").first()
        current = fed.verify(current_row.signed, members.pinned_keys()) if current_row else None
        fed.check_newer(document, current)
    except fed.FederationError as exc:
        raise InvalidInput(ErrorCode.FEDERATION_DOCUMENT_REFUSED, str(exc)) from exc
    now = timezone.now()
    row = FederationDocument.objects.create(
        serial=document.serial,
        federation=document.federation,
        signed=signed,
        installed_at=now,
        installed_by=actor.label,
    )
    record_audit(
        actor,
        "federation:installed",
        row,
        at=now,
        data={
            "serial": document.serial,
            "members": [m.name for m in document.members],
            "replaces": current.serial if current else None,
        },
    )
    transaction.on_commit(members.clear_cache)
    return row
