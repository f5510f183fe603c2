"""Resolve vault numbers to their routing: one number or 100,000, through one path.

The single lookup and the routing plan both call ``resolve_groups``, so they can never disagree:
one set-based query reads the vaults asked with their provider's status and log position (one
row each; see ``_rows_sql`` for the three shapes of that query), the rows are grouped by provider
and state in Python, and ``reasons_for`` decides deliverability once per group, not per vault.
Providers' identity, endpoints and certificates come from a per-process cache keyed by the
provider's last log position, which every routing-relevant provider change moves (see
registry.services).
"""

from __future__ import annotations

import functools
import json
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

from django.conf import settings
from django.db import connection
from django.utils import timezone

from registry.models import (
    Certificate,
    CertificateUse,
    Endpoint,
    OrganisationStatus,
    Provider,
    Vault,
    VaultStatus,
)
from registry.models.routing import VAULT_FLAGS
from registry.numbers import format_display


class Reason(StrEnum):
    """Why a vault cannot be delivered to; part of the public API."""

    CLOSED = "closed"
    HOLD = "hold"
    PROVIDER_SUSPENDED = "provider_suspended"
    PROVIDER_WITHDRAWN = "provider_withdrawn"
    NO_ENDPOINT = "no_endpoint"
    NO_VALID_CERTIFICATE = "no_valid_certificate"
    # Only in routing plans: a single lookup answers 404 and 400 instead.
    UNKNOWN = "unknown"
    INVALID = "invalid"  # written "invalid:<code of the number parser>"


_PROVIDER_REASONS = {
    OrganisationStatus.SUSPENDED: Reason.PROVIDER_SUSPENDED,
    OrganisationStatus.WITHDRAWN: Reason.PROVIDER_WITHDRAWN,
}

# A cached provider route is re-read at the latest after this long, whatever happens.
ROUTE_CACHE_TTL = timedelta(seconds=60)


@dataclass(slots=True)
class ProviderRoute:
    """A provider's identity with what an issuer needs to deliver to it, fetched once."""

    id: str
    legal_name: str
    legal_id: str
    status: str
    log_sequence: int | None
    endpoints: list[dict[str, Any]] = field(default_factory=list)
    certificates: list[dict[str, Any]] = field(default_factory=list)

    def identity(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "legal_name": self.legal_name,
            "legal_id": self.legal_id,
            "status": self.status,
            "log_sequence": self.log_sequence,
        }


@dataclass(frozen=True, slots=True)
class VaultState:
    status: str
    client_hold: bool
    server_hold: bool
    client_transfer_prohibited: bool
    registry_lock: bool
    pending_transfer: bool

    @property
    def flags(self) -> list[str]:
        return [flag for flag in VAULT_FLAGS if getattr(self, flag)]


@dataclass(slots=True)
class Group:
    """Vaults asked that share a provider and a state, hence the same deliverability."""

    provider: ProviderRoute
    state: VaultState
    numbers: list[str]
    reasons: list[Reason]
    log_indexes: list[int | None] | None = None
    moved_at: list[datetime | None] | None = None  # with the log indexes: each vault's last move


@dataclass(slots=True)
class Resolution:
    """Where one vault routes now, and whether it can be delivered to."""

    number: str
    state: VaultState
    log_sequence: int | None
    provider: ProviderRoute
    reasons: list[Reason]
    # The provider the vault left, named for TRANSFER_GRACE_DAYS after a move so that an issuer
    # holding the old route understands a refusal from it (issue 5); None otherwise.
    previous_provider: dict[str, Any] | None = None

    @property
    def status(self) -> str:
        return self.state.status

    @property
    def deliverable(self) -> bool:
        return not self.reasons

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "display": format_display(self.number),
            "status": self.state.status,
            "flags": self.state.flags,
            "deliverable": self.deliverable,
            "reasons": [str(reason) for reason in self.reasons],
            "provider": self.provider.identity(),
            "endpoints": self.provider.endpoints,
            "encryption_certificates": self.provider.certificates,
            "log_sequence": self.log_sequence,
            "previous_provider": self.previous_provider,
        }


def reasons_for(state: VaultState, provider: ProviderRoute) -> list[Reason]:
    """Every reason a vault cannot be delivered to, most decisive first (DESIGN.md §4)."""
    reasons = []
    if state.status == VaultStatus.CLOSED:
        reasons.append(Reason.CLOSED)
    if state.client_hold or state.server_hold:
        reasons.append(Reason.HOLD)
    if provider.status != OrganisationStatus.ACTIVE:
        reasons.append(_PROVIDER_REASONS.get(provider.status, Reason.PROVIDER_SUSPENDED))
    if not provider.endpoints:
        reasons.append(Reason.NO_ENDPOINT)
    if not provider.certificates:
        reasons.append(Reason.NO_VALID_CERTIFICATE)
    return reasons


# --- Provider routes, cached per process -----------------------------------------------------


class _RouteCache:
    """Endpoints and valid certificates per provider, valid while the provider's log position is
    unchanged and until the next activation or expiry among them (or the TTL)."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[tuple[Any, ...], datetime, tuple[dict, list, list]]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...], now: datetime) -> tuple[dict, list, list] | None:
        entry = self._entries.get(key[0])
        if entry is not None and entry[0] == key and now < entry[1]:
            return entry[2]
        return None

    def put(self, key: tuple[Any, ...], until: datetime, value: tuple[dict, list, list]) -> None:
        with self._lock:
            self._entries[key[0]] = (key, until, value)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


route_cache = _RouteCache()


def _fetch_routes(
    provider_ids: list[str], now: datetime
) -> dict[str, tuple[dict, list, list, datetime]]:
    """Identity, endpoints and encryption certificates of these providers at ``now``, and until
    when that answer holds: three queries. Endpoints and certificates that start later are read
    too, only to know when the answer stops being true.
    """
    identities = {
        str(row["id"]): {
            "legal_name": row["legal_name"],
            "legal_id": f"{row['legal_id_scheme']}:{row['legal_id']}",
            "status": row["status"],  # today's: a lookup takes it from the vault query
        }
        for row in Provider.objects.filter(pk__in=provider_ids).values(
            "id", "legal_name", "legal_id_scheme", "legal_id", "status"
        )
    }
    until = {pid: now + ROUTE_CACHE_TTL for pid in provider_ids}

    def current(rows, starts: str, ends: str, stopped: str) -> dict[str, list[dict[str, Any]]]:
        """The rows in force at ``now``, per provider; moves ``until`` to the next change."""
        found: dict[str, list[dict[str, Any]]] = {pid: [] for pid in provider_ids}
        for row in rows:
            pid = str(row.pop("provider_id"))
            for moment in (row[starts], row[ends], row.pop(stopped)):
                if moment is not None and now < moment < until[pid]:
                    until[pid] = moment
            if row[starts] <= now:
                row["id"] = str(row["id"])
                found[pid].append(row)
        return found

    endpoints = current(
        Endpoint.objects.filter(provider_id__in=provider_ids)
        .exclude(deactivated_at__lte=now)
        .exclude(expires_at__lte=now)
        .order_by("created_at", "id")
        .values(
            "provider_id",
            "id",
            "transport_profile",
            "url",
            "document_types",
            "activates_at",
            "expires_at",
            "deactivated_at",
        ),
        "activates_at",
        "expires_at",
        "deactivated_at",
    )
    certificates = current(
        Certificate.objects.filter(provider_id__in=provider_ids, use=CertificateUse.ENCRYPTION)
        .exclude(retired_at__lte=now)
        .filter(not_after__gt=now)
        .order_by("not_after", "id")
        .values(
            "provider_id",
            "id",
            "fingerprint_sha256",
            "key_type",
            "not_before",
            "not_after",
            "retired_at",
            "pem",
        ),
        "not_before",
        "not_after",
        "retired_at",
    )
    return {
        pid: (identities[pid], endpoints[pid], certificates[pid], until[pid])
        for pid in provider_ids
    }


def provider_routes(
    keys: Iterable[tuple[Any, ...]], at: datetime | None = None
) -> dict[str, tuple[dict, list, list]]:
    """Identity and routes of providers keyed (id, status, log position); cached unless ``at``
    is given."""
    now = at or timezone.now()
    routes: dict[str, tuple[dict, list, list]] = {}
    missing: dict[str, tuple[Any, ...]] = {}
    for key in set(keys):
        cached = route_cache.get(key, now) if at is None else None
        if cached is None:
            missing[key[0]] = key
        else:
            routes[key[0]] = cached
    if missing:
        for pid, (identity, endpoints, certificates, until) in _fetch_routes(
            list(missing), now
        ).items():
            routes[pid] = (identity, endpoints, certificates)
            if at is None:
                route_cache.put(missing[pid], until, routes[pid])
    return routes


# --- Resolution -------------------------------------------------------------------------------

# One row per vault found: the provider's status and log position (the cache key of its route),
# then the vault's state; its log position and last move only for one-by-one answers.
_VAULT_STATE = (
    "status",
    "client_hold",
    "server_hold",
    "client_transfer_prohibited",
    "registry_lock",
    "pending_transfer",
)
_STATE_COLUMNS = "p.status, p.last_log_index, " + ", ".join(f"v.{c}" for c in _VAULT_STATE)


# Up to this many numbers, PostgreSQL resolves them with a plain ``= ANY(array)`` (an index scan,
# cheapest for a lookup); above, with one primary-key probe per number, grouped by the database
# (see _rows_sql). One-by-one answers (``resolve``) always take the first way: they are for a
# few numbers.
SMALL_SET = 1000


@functools.lru_cache(maxsize=16)
def _rows_sql(vendor: str, with_log_index: bool, shape: str) -> str:
    """The query of ``shape``: ``one`` number or ``any`` of a few (one row per vault found), or a
    ``probe`` of many (one row per group: routing plans on PostgreSQL)."""
    vault, provider = Vault._meta.db_table, Provider._meta.db_table
    if vendor != "postgresql":
        detail = ", v.last_log_index, v.transferred_at" if with_log_index else ""
        where = "= %s" if shape == "one" else "IN (SELECT value FROM json_each(%s))"
        return (
            f"SELECT v.number, v.provider_id, {_STATE_COLUMNS}{detail} "  # noqa: S608
            f"FROM {vault} v JOIN {provider} p ON p.id = v.provider_id WHERE v.number {where}"
        )
    # Provider ids come as text, cheaper to decode than UUID objects; the time of the last move
    # as epoch seconds, cheaper to load than a timestamptz (whose loader Django re-creates for
    # every cursor).
    detail = (
        ", v.last_log_index, extract(epoch FROM v.transferred_at)::float8" if with_log_index else ""
    )
    columns = f"v.number, v.provider_id::text, {_STATE_COLUMNS}{detail}"
    if shape != "probe":  # one number, or a few: a plain index scan
        where = "= %s" if shape == "one" else "= ANY(%s)"
        return (
            f"SELECT {columns} FROM {vault} v "  # noqa: S608
            f"JOIN {provider} p ON p.id = v.provider_id WHERE v.number {where}"
        )
    # Many numbers: sent as one comma-separated text (psycopg would adapt a 100,000-item list
    # in Python), and probed one by one on the primary key (LIMIT 1 keeps the planner from
    # turning the join into a scan of the whole table): the cost follows the numbers asked,
    # not the size of the registry. The database groups them by provider and state, so a few
    # hundred rows come back instead of one per number; unknown numbers form the group whose
    # provider is NULL.
    state, grouped = (", ".join(f"{t}.{c}" for c in _VAULT_STATE) for t in ("v", "g"))
    return (
        f"SELECT g.provider_id::text, p.status, p.last_log_index, {grouped}, "  # noqa: S608
        f"g.numbers FROM ("
        f"SELECT v.provider_id, {state}, string_agg(q.number, ',') AS numbers "
        f"FROM unnest(string_to_array(%s, ',')) AS q(number) LEFT JOIN LATERAL "
        f"(SELECT * FROM {vault} x WHERE x.number = q.number LIMIT 1) v ON true "
        f"GROUP BY v.provider_id, {state}) g LEFT JOIN {provider} p ON p.id = g.provider_id"
    )


def _uuid_text(value: Any) -> str:
    return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))


def _moved_at(value: float | datetime | str | None) -> datetime | None:
    # PostgreSQL sends epoch seconds; Django keeps aware datetimes in SQLite as naive UTC (text,
    # or parsed by its converters).
    if value is None or value == "":
        return None
    if isinstance(value, float):
        return datetime.fromtimestamp(value, UTC)
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _settle_overdue_transfers(groups: list[Group]) -> bool:
    """Apply the transfers of these vaults that are past their deadline; True if any was.

    Only vaults flagged ``pending_transfer`` cost a query, so that no answer is ever stale and a
    lookup of any other vault keeps its fixed query count.
    """
    pending = [n for group in groups if group.state.pending_transfer for n in group.numbers]
    if not pending:
        return False
    from registry.services.transfers import transfer_settle_overdue

    return transfer_settle_overdue(vault_numbers=pending) > 0


class Resolved(NamedTuple):
    groups: list[Group]
    unknown: list[str]  # the numbers no vault has, sorted


def resolve_groups(
    numbers: Sequence[str], *, with_log_index: bool = False, at: datetime | None = None
) -> Resolved:
    """Resolve normalised, distinct numbers into groups, and the unknown ones.

    One query for the vaults, plus three for the providers whose routes are not cached. Vaults
    are grouped by provider and state (by the database for large sets on PostgreSQL, else here),
    so deliverability is decided once per group. The state at ``at`` is today's vault state with
    the endpoints and certificates of then.
    """
    if not numbers:
        return Resolved([], [])
    vendor = connection.vendor
    postgresql = vendor == "postgresql"
    if len(numbers) == 1:
        shape, param = "one", next(iter(numbers))
    elif not postgresql:
        shape, param = "any", json.dumps(list(numbers))
    elif len(numbers) <= SMALL_SET or with_log_index:
        shape, param = "any", list(numbers)
    else:  # sorted: the probes walk the index in order
        shape, param = "probe", ",".join(sorted(numbers))
    with connection.cursor() as cursor:
        cursor.execute(_rows_sql(vendor, with_log_index, shape), [param])
        rows = cursor.fetchall()
    grouped: dict[tuple[Any, ...], list[Any]] = {}
    unknown: list[str] = []
    if shape == "probe":  # one row per group, its numbers joined by commas
        for row in rows:
            if row[0] is None:
                unknown = row[9].split(",")
            else:
                grouped[row[:9]] = [row[9].split(","), [], []]
    else:
        for row in rows:
            key = row[1:10]
            members = grouped.get(key)
            if members is None:
                members = grouped[key] = [[], [], []]
            members[0].append(row[0])
            if with_log_index:
                members[1].append(row[10])
                members[2].append(_moved_at(row[11]))
        if len(rows) < len(numbers):
            found = {row[0] for row in rows}
            unknown = [number for number in numbers if number not in found]
    unknown.sort()
    # PostgreSQL sends provider ids as text, SQLite as 32 hex digits: key on the canonical form.
    pids = {key[0]: key[0] if postgresql else _uuid_text(key[0]) for key in grouped}
    routes = provider_routes({(pids[key[0]], key[1], key[2]) for key in grouped}, at)
    providers: dict[str, ProviderRoute] = {}
    groups = []
    for key, (members, log_indexes, moved_at) in grouped.items():
        pid = pids[key[0]]
        provider = providers.get(pid)
        if provider is None:
            identity, endpoints, certificates = routes[pid]
            provider = providers[pid] = ProviderRoute(
                id=pid,
                legal_name=identity["legal_name"],
                legal_id=identity["legal_id"],
                status=key[1],
                log_sequence=key[2],
                endpoints=endpoints,
                certificates=certificates,
            )
        state = VaultState(key[3], *(bool(flag) for flag in key[4:9]))
        groups.append(
            Group(
                provider,
                state,
                members,
                reasons_for(state, provider),
                log_indexes if with_log_index else None,
                moved_at if with_log_index else None,
            )
        )
    if _settle_overdue_transfers(groups):  # an overdue transfer is applied when read (issue 5)
        return resolve_groups(numbers, with_log_index=with_log_index, at=at)
    return Resolved(groups, unknown)


def previous_providers(numbers: list[str]) -> dict[str, dict[str, Any]]:
    """The provider each of these vaults left, and when: one query whatever their number."""
    rows = Vault.objects.filter(number__in=numbers, previous_provider__isnull=False).values(
        "number",
        "transferred_at",
        "previous_provider_id",
        "previous_provider__legal_name",
        "previous_provider__legal_id_scheme",
        "previous_provider__legal_id",
    )
    return {
        row["number"]: {
            "id": str(row["previous_provider_id"]),
            "legal_name": row["previous_provider__legal_name"],
            "legal_id": (
                f"{row['previous_provider__legal_id_scheme']}:{row['previous_provider__legal_id']}"
            ),
            "moved_at": row["transferred_at"],
            "until": row["transferred_at"] + timedelta(days=settings.TRANSFER_GRACE_DAYS),
        }
        for row in rows
    }


def resolve(numbers: Iterable[str], at: datetime | None = None) -> dict[str, Resolution]:
    """Resolve normalised numbers one by one (each with its log position); unknown ones absent.

    Vaults moved within the grace period name their previous provider: one more query, only
    when there are such vaults among those asked.
    """
    now = at or timezone.now()
    since = now - timedelta(days=settings.TRANSFER_GRACE_DAYS)
    groups = resolve_groups(list(set(numbers)), with_log_index=True, at=at).groups
    recently_moved = [
        number
        for group in groups
        for number, moved_at in zip(group.numbers, group.moved_at or [], strict=True)
        if moved_at is not None and since < moved_at <= now
    ]
    previous = previous_providers(recently_moved) if recently_moved else {}
    answer = {}
    for group in groups:
        for number, log_index in zip(group.numbers, group.log_indexes or [], strict=True):
            answer[number] = Resolution(
                number,
                group.state,
                log_index,
                group.provider,
                group.reasons,
                previous.get(number),
            )
    return answer


def resolve_one(number: str, at: datetime | None = None) -> Resolution | None:
    return resolve([number], at).get(number)
