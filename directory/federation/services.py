"""The federation's writes: installing a federation document (signed by a pinned federation
key, with a higher serial); adding the workers' forwarded-traffic counts; checking the peers."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from directory.federation import forwarding, members
from directory.federation.models import FederationDocument, PeerHealth, PeerTraffic
from directory.federation.traffic import Key
from directory.transparency import cosignature, note
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


def federation_traffic_add(counts: Mapping[Key, Sequence[int]], seen: Mapping[str, dict]) -> int:
    """Add a worker's forwarded-traffic counters, keyed (member, minute as Unix time,
    direction), to ``PeerTraffic`` (one row per key, summed with what is there), and the last
    answer and error it saw of each peer to ``PeerHealth``. Returns the traffic rows touched."""
    with transaction.atomic():
        for (member, minute, direction), (lookups, plans, numbers, errors) in sorted(
            counts.items()
        ):
            at = datetime.fromtimestamp(minute, tz=UTC)
            row = PeerTraffic.objects.filter(member=member, minute=at, direction=direction)
            added = {
                "lookups": F("lookups") + lookups,
                "plans": F("plans") + plans,
                "numbers": F("numbers") + numbers,
                "errors": F("errors") + errors,
            }
            if row.update(**added):
                continue
            try:
                with transaction.atomic():
                    PeerTraffic.objects.create(
                        member=member,
                        minute=at,
                        direction=direction,
                        lookups=lookups,
                        plans=plans,
                        numbers=numbers,
                        errors=errors,
                    )
            except IntegrityError:  # created meanwhile by another worker's flush
                row.update(**added)
        for member, last in sorted(seen.items()):
            health = _health(member)
            if "ok" in last:
                ok = datetime.fromtimestamp(last["ok"], tz=UTC)
                health.last_ok_at = max(health.last_ok_at or ok, ok)
            if "error" in last:
                at = datetime.fromtimestamp(last["error"][0], tz=UTC)
                if health.last_error_at is None or at >= health.last_error_at:
                    health.last_error_at, health.last_error = at, last["error"][1]
            health.save()
    return len(counts)


def _health(member: str) -> PeerHealth:
    health, _created = PeerHealth.objects.select_for_update().get_or_create(member=member)
    return health


Fetch = Callable[[str, float], tuple[int, bytes]]


def _http_fetch(url: str, timeout: float) -> tuple[int, bytes]:
    """GET with the forwarding's transport (urllib, or the one a test sets)."""
    status, _headers, body = forwarding._send("GET", url, {}, None, timeout)
    return status, body


def federation_peers_check(*, fetch: Fetch | None = None, timeout: float = 5.0) -> list[PeerHealth]:
    """Fetch every active peer's latest checkpoint (public, unsigned request), verify it with
    the log key the federation document lists, note which members' witnesses cosigned it
    (among them this registry's own: the cosignatures it gave) and keep it in ``PeerHealth``;
    a peer that cannot be reached or serves a checkpoint that does not verify keeps its last
    good one and gets the error. Run by ``manage.py federation check`` and the admin."""
    fetch = fetch or _http_fetch
    document = members.current()
    me = members.self_member(document)
    if document is None or me is None:
        return []
    witnesses: dict[str, list[bytes]] = {}
    for member in document.members:
        if member.witness_vkey:
            name, public = cosignature.parse_vkey(member.witness_vkey)
            witnesses.setdefault(name, []).append(public)
    checked = []
    for member in document.members:
        if member is me or member.status != fed.MemberStatus.ACTIVE:
            continue
        now = timezone.now()
        error = ""
        try:
            status, body = fetch(member.url + "/api/v1/log/checkpoint", timeout)
            if status != 200:
                raise ValueError(f"HTTP {status} for its checkpoint")
            signed = body.decode()
            checkpoint = note.parse_checkpoint(signed, member.log_keys, member.origin)
            cosigners = sorted(cosignature.verify_cosignatures(signed, witnesses))
        except (forwarding.RegistryDown, forwarding.RegistryTimeout) as exc:
            error = f"unreachable: {exc}"
        except (ValueError, note.NoteError, cosignature.CosignatureError) as exc:
            error = f"its checkpoint is refused: {exc}"
        with transaction.atomic():
            health = _health(member.name)
            health.checked_at = now
            if error:
                health.last_error, health.last_error_at = error, now
            else:
                health.last_ok_at = now
                health.checkpoint_size = checkpoint.size
                health.checkpoint_note = signed
                health.checkpoint_time = (
                    datetime.fromtimestamp(checkpoint.time, tz=UTC) if checkpoint.time else None
                )
                health.cosigners = cosigners
            health.save()
        checked.append(health)
    return checked
