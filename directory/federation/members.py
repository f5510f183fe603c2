"""The federation document in force and what follows from it: the members, this registry's own
entry, each number's home registry. Read and verified once per ``_CACHE_SECONDS`` per process
(the lookup's hot path asks for the known allocators on every request): a document installed
is in force in the installing process at once, in every other process within 30 s."""

from __future__ import annotations

import logging
import time

from django.conf import settings

from directory.federation.models import FederationDocument
from directory.transparency import federation as fed

logger = logging.getLogger("directory.federation")

_CACHE_SECONDS = 30.0
_cache: dict[str, tuple[float, fed.Document | None]] = {}


def pinned_keys() -> dict[str, list[bytes]]:
    """The federation keys this registry accepts documents from (``VAULT_FEDERATION_KEYS``)."""
    return fed.pinned(settings.VAULT_FEDERATION_KEYS)


def current() -> fed.Document | None:
    """The accepted document with the highest serial, verified again when read (a row edited in
    the database is not a signed document), or None when none is installed."""
    now = time.monotonic()
    cached = _cache.get("current")
    if cached is not None and now - cached[0] < _CACHE_SECONDS:
        return cached[1]
    row = FederationDocument.objects.order_by("-serial").first()
    document = None
    if row is not None:
        try:
            document = fed.verify(row.signed, pinned_keys())
        except fed.FederationError as exc:  # keys re-pinned, or the row was edited
            logger.error("The installed federation document does not verify: %s", exc)
    _cache["current"] = (now, document)
    return document


def clear_cache() -> None:
    _cache.clear()


def self_member(document: fed.Document | None = None) -> fed.Member | None:
    """This registry's own entry: the member holding its allocator code."""
    document = document or current()
    return document.home_of(settings.VAULT_ALLOCATOR) if document else None


def home_of(allocator: str) -> fed.Member | None:
    document = current()
    return document.home_of(allocator) if document else None


def is_local(allocator: str) -> bool:
    """A number this registry answers itself: its allocator is ours (without a federation
    document, every allocator it knows, as before federations)."""
    document = current()
    if document is None:
        return True
    own = document.home_of(settings.VAULT_ALLOCATOR)
    return own is not None and allocator in own.allocators


def peer_witnesses(document: fed.Document | None = None) -> list[dict[str, str]]:
    """The witnesses of the other active members (``{"name", "vkey", "url"}``, as
    ``VAULT_WITNESSES`` lists them): each member cosigns its peers' checkpoints."""
    from directory.transparency import cosignature

    document = document or current()
    me = self_member(document)
    if document is None:
        return []
    found = []
    for member in document.members:
        if member is me or member.status != fed.MemberStatus.ACTIVE:
            continue
        if member.witness_vkey and member.witness_url:
            name, _public = cosignature.parse_vkey(member.witness_vkey)
            found.append({"name": name, "vkey": member.witness_vkey, "url": member.witness_url})
    return found


def witnesses() -> list[dict[str, str]]:
    """The witnesses asked at each publication: ``VAULT_WITNESSES`` when set, else the peers'."""
    return list(settings.VAULT_WITNESSES) or peer_witnesses()
