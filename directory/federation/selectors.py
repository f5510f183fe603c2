"""What the federation admins see of the federation: the document in force, each member with
the health of the peer and the traffic forwarded to and from it (read-only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Sum
from django.utils import timezone

from directory.federation import members
from directory.federation.models import PeerHealth, PeerTraffic
from directory.models import Checkpoint
from directory.transparency import cosignature
from directory.transparency import federation as fed

RECENT_CHECKPOINTS = 1000  # this registry's checkpoints looked at for the peers' cosignatures
TRAFFIC_WINDOW = timedelta(hours=24)


@dataclass
class PeerView:
    """One member as the admin sees it."""

    member: fed.Member
    is_self: bool
    witness: str = ""  # its witness's name, as cosignature lines carry it
    health: PeerHealth | None = None
    cosigned_by_us: bool | None = None  # does its latest checkpoint carry our cosignature?
    cosignatures_received: int = 0  # of our recent checkpoints, how many it cosigned
    last_cosigned: dict | None = None  # the latest of them: size, created_at
    traffic: dict[str, dict[str, int]] = field(default_factory=dict)  # direction → counts


@dataclass
class FederationView:
    document: fed.Document | None
    peers: list[PeerView]
    recent_checkpoints: int
    since: datetime


def _witness_name(member: fed.Member) -> str:
    return cosignature.parse_vkey(member.witness_vkey)[0] if member.witness_vkey else ""


def federation_overview(now: datetime | None = None) -> FederationView:
    """The document in force and every member, with its health, the cosignatures it gave this
    registry (on its last ``RECENT_CHECKPOINTS`` checkpoints) and received from it (on the
    peer's latest checkpoint seen), and the traffic of the last 24 hours each way. A bounded
    number of queries, whatever the traffic (minute rows summed by the database)."""
    now = now or timezone.now()
    document = members.current()
    since = now - TRAFFIC_WINDOW
    if document is None:
        return FederationView(None, [], 0, since)
    me = members.self_member(document)
    own_witness = _witness_name(me) if me else ""
    health = {row.member: row for row in PeerHealth.objects.all()}
    recent = list(
        Checkpoint.objects.order_by("-size", "-id").values("id", "size", "cosigners", "created_at")[
            :RECENT_CHECKPOINTS
        ]
    )
    totals = (
        PeerTraffic.objects.filter(minute__gte=since)
        .values("member", "direction")
        .annotate(
            lookups=Sum("lookups"), plans=Sum("plans"), numbers=Sum("numbers"), errors=Sum("errors")
        )
    )
    traffic: dict[str, dict[str, dict[str, int]]] = {}
    for row in totals:
        counts = {key: row[key] or 0 for key in ("lookups", "plans", "numbers", "errors")}
        traffic.setdefault(row["member"], {})[row["direction"]] = counts
    peers = []
    for member in document.members:
        view = PeerView(member, member is me, _witness_name(member))
        view.health = health.get(member.name)
        view.traffic = traffic.get(member.name, {})
        if not view.is_self:
            if view.health is not None and view.health.checkpoint_size is not None:
                view.cosigned_by_us = own_witness in (view.health.cosigners or [])
            if view.witness:
                cosigned = [c for c in recent if view.witness in (c["cosigners"] or [])]
                view.cosignatures_received = len(cosigned)
                view.last_cosigned = cosigned[0] if cosigned else None
        peers.append(view)
    return FederationView(document, peers, len(recent), since)
