"""What every service needs: who acts, the append-only log and the audit trail.

Lock order
----------
Every service takes the row locks it needs in this one order, and never one out of it, so two
writes can wait for each other but never deadlock (a cycle needs two orders):

1. provider rows (``lock_providers``, ``lock_active_provider``), several in id order;
2. the vault row (``lock_open_vault``); the rows that belong to one vault (its transfer codes,
   its transfers) are only ever locked under its lock, vault first, then the transfer;
3. an endpoint, certificate, message, webhook or token row;
4. the log head, last: ``append_log`` reserves positions with an UPDATE that row-locks
   ``registry_loghead`` until commit. After it a service only inserts, and updates rows it
   already locked (``touch_provider`` needs step 1).

Provider (and issuer) rows are locked ``FOR NO KEY UPDATE``, which does not conflict with the
``FOR KEY SHARE`` lock PostgreSQL's foreign-key checks take on the referenced row: inserting a
vault, a transfer or a message never waits for a provider row another write holds, even at
commit when the (deferred) checks run with the log head locked. Nothing changes a primary key.

What still fails (a serialisation failure, a deadlock with a write outside the services) is
retried by the API (``registry.api.retry``), then answered 503 ``retry_later``. On SQLite
IMMEDIATE transactions serialise writers instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import rfc8785
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, models, transaction

from directory import checkpoints, state, tree
from directory.models import VaultLogRef
from directory.transparency import records
from directory.transparency.records import Record
from registry.errors import Conflict, ErrorCode, Gone, InvalidInput, NotFound
from registry.models import (
    ApiToken,
    AuditEvent,
    Certificate,
    Endpoint,
    LogEntry,
    LogHead,
    LogKind,
    Provider,
    Vault,
    VaultStatus,
)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who performs a write: a federation admin, a member organisation's staff (portal), an API
    token, or an operator's command."""

    label: str
    user: AbstractBaseUser | None = None
    token: ApiToken | None = None
    # The organisation ("provider:<id>" or "issuer:<id>") a portal user acts for: such a person
    # has exactly the rights of the organisation's API token, never a federation admin's.
    organisation: str = ""

    @classmethod
    def for_user(cls, user: AbstractBaseUser) -> Actor:
        """A person, by name. Staff of a member organisation act for it (``for_member``)."""
        membership = getattr(user, "membership", None)
        if membership is not None:
            organisation = f"{membership.kind}:{membership.organisation.pk}"
            return cls(
                label=f"user:{user.get_username()} {organisation}",
                user=user,
                organisation=organisation,
            )
        return cls(label=f"user:{user.get_username()}", user=user)

    @property
    def is_federation_admin(self) -> bool:
        """A registry operator's person (the admin), not a member organisation's staff."""
        return self.user is not None and not self.organisation

    @classmethod
    def for_token(cls, token: ApiToken) -> Actor:
        owner = "provider" if token.provider_id else "issuer"
        owner_id = token.provider_id or token.issuer_id
        return cls(label=f"{owner}:{owner_id} token:{token.prefix}", token=token)

    @classmethod
    def system(cls, name: str) -> Actor:
        return cls(label=f"system:{name}")

    @classmethod
    def public(cls, remote: str = "") -> Actor:
        return cls(label=f"public:{remote}" if remote else "public")


def lock_providers(*provider_ids: Any) -> dict[Any, Provider]:
    """Lock these provider rows in id order (step 1 of the lock order) and return them by id.

    ``FOR NO KEY UPDATE``: the foreign-key checks of concurrent inserts do not wait for it.
    """
    wanted = sorted({pid for pid in provider_ids if pid is not None}, key=str)
    rows = Provider.objects.select_for_update(no_key=True).filter(pk__in=wanted).order_by("pk")
    return {provider.pk: provider for provider in rows}


def lock_active_provider(provider: Provider) -> Provider:
    """Re-read ``provider`` under a row lock and refuse it unless active.

    The lock orders the caller after any concurrent status change (step 1 of the lock order).
    """
    provider = Provider.objects.select_for_update(no_key=True).get(pk=provider.pk)
    if not provider.is_active:
        raise Conflict(
            ErrorCode.PROVIDER_NOT_ACTIVE, f"The provider is {provider.status}, not active."
        )
    return provider


def touch_provider(provider_id: Any, sequence: int) -> None:
    """Move the provider's log position (its last routing-relevant change, shown to admins and
    providers), so every routing-relevant change of the provider calls this."""
    Provider.objects.filter(pk=provider_id).update(last_log_index=sequence)


def lock_open_vault(number: str) -> Vault:
    """Read vault ``number`` under a row lock for a change (step 2 of the lock order); 404 if
    none has it, 410 if closed."""
    vault = Vault.objects.select_for_update(no_key=True).filter(pk=number).first()
    if vault is None:
        raise NotFound(ErrorCode.VAULT_NOT_FOUND, "No vault has this number.")
    if vault.status == VaultStatus.CLOSED:
        raise Gone(ErrorCode.VAULT_CLOSED, "This vault is closed.")
    return vault


def refuse_registry_lock(vault: Vault, actor: Actor) -> None:
    """``registry_lock`` blocks every change a provider asks for; only federation admins act."""
    if vault.registry_lock and not actor.is_federation_admin:
        raise Conflict(ErrorCode.REGISTRY_LOCKED, "This vault is locked by the registry.")


def timestamp(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds, as it appears in log entries."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(payload: dict[str, Any]) -> bytes:
    """RFC 8785 (JCS) canonical JSON bytes."""
    return rfc8785.dumps(payload)


def leaf_hash(body: bytes) -> bytes:
    """RFC 9162 leaf hash: SHA-256(0x00 ‖ entry)."""
    return hashlib.sha256(b"\x00" + body).digest()


def _reserve(count: int) -> int:
    """Reserve ``count`` consecutive log positions and return the first.

    One UPDATE … RETURNING both increments the head and row-locks it until commit, so concurrent
    writers queue here and sequences stay gapless: a rolled-back transaction releases its range.
    """
    table = LogHead._meta.db_table
    sql = f"UPDATE {table} SET size = size + %s WHERE id = 1 RETURNING size"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [count])
        row = cursor.fetchone()
    if row is None:
        LogHead.objects.get_or_create(pk=1)
        return _reserve(count)
    return row[0] - count


def vault_record(vault: Vault) -> Record:
    """The complete record of a vault as the log carries it (directory.transparency.records)."""
    previous = None
    if vault.previous_provider_id and vault.transferred_at:
        previous = {
            "id": str(vault.previous_provider_id),
            "moved_at": timestamp(vault.transferred_at),
            "until": timestamp(vault.transferred_at + timedelta(days=settings.TRANSFER_GRACE_DAYS)),
        }
    return {
        "type": records.VAULT,
        "number": vault.number,
        "provider": str(vault.provider_id),
        "status": str(vault.status),
        **{flag: bool(getattr(vault, flag)) for flag in records.FLAGS},
        "created_at": timestamp(vault.created_at),
        "closed_at": timestamp(vault.closed_at) if vault.closed_at else None,
        "previous_provider": previous,
    }


def provider_record(provider_id: Any) -> Record:
    """The complete record of a provider as the log carries it: identity, status, and every
    endpoint and certificate it publishes (deactivated and retired ones leave the record).
    Three queries; call it after the change is saved."""
    provider = Provider.objects.get(pk=provider_id)
    endpoints = Endpoint.objects.filter(provider_id=provider_id, deactivated_at__isnull=True)
    certificates = Certificate.objects.filter(provider_id=provider_id, retired_at__isnull=True)
    return {
        "type": records.PROVIDER,
        "id": str(provider.pk),
        "legal_name": provider.legal_name,
        "legal_id": f"{provider.legal_id_scheme}:{provider.legal_id}",
        "status": str(provider.status),
        "status_since": timestamp(provider.status_changed_at),
        "endpoints": [
            {
                "id": str(e.pk),
                "transport_profile": e.transport_profile,
                "url": e.url,
                "document_types": list(e.document_types),
                "activates_at": timestamp(e.activates_at),
                "expires_at": timestamp(e.expires_at) if e.expires_at else None,
            }
            for e in endpoints.order_by("created_at", "id")
        ],
        "certificates": [
            {
                "id": str(c.pk),
                "use": c.use,
                "fingerprint_sha256": c.fingerprint_sha256,
                "key_type": c.key_type,
                "not_before": timestamp(c.not_before),
                "not_after": timestamp(c.not_after),
            }
            for c in certificates.order_by("not_after", "id")
        ],
    }


LogItem = tuple[str, dict[str, Any]] | tuple[str, dict[str, Any], Sequence[Record]]


def append_log(
    kind: str, payload: dict[str, Any], *, at: datetime, records: Sequence[Record] = ()
) -> LogEntry:
    """Append one entry; must run inside the transaction of the change it records.

    ``records`` are the complete new records of the vaults and providers the change touches:
    the entry carries them and the state map takes them (DESIGN.md §6).
    """
    return append_log_many([(kind, payload, records)], at=at)[0]


def append_log_many(items: Sequence[LogItem], *, at: datetime) -> list[LogEntry]:
    """Append entries, extend the stored Merkle tree and the state map, index their vaults.

    Must run inside the transaction of the change it records: the entries, their tree nodes,
    the map's records and nodes and the vault references commit with it or not at all. The
    entry time never goes back along the sequence: a writer that read the clock before another
    but appends after it takes the other's time. A checkpoint is published after commit.
    """
    first = _reserve(len(items))
    if first:
        previous = LogEntry.objects.filter(sequence=first - 1).values_list("created_at", flat=True)
        at = max(at, previous.first() or at)
    entries, refs, changed = [], [], []
    for offset, (kind, payload, *carried) in enumerate(items):
        new_records = list(carried[0]) if carried else []
        document = {"kind": str(kind), "at": timestamp(at), **payload}
        if new_records:
            document["records"] = new_records
            changed += new_records
        body = canonical(document)
        entries.append(
            LogEntry(
                sequence=first + offset,
                kind=str(kind),
                body=body,
                leaf_hash=leaf_hash(body),
                created_at=at,
            )
        )
        if isinstance(payload.get("vault"), str):
            refs.append(VaultLogRef(number=payload["vault"], sequence=first + offset))
    LogEntry.objects.bulk_create(entries, batch_size=2000)
    tree.extend(first, [entry.leaf_hash for entry in entries])
    state.apply(first + len(items), changed)
    VaultLogRef.objects.bulk_create(refs, batch_size=2000)
    _schedule_checkpoint()
    return entries


def state_snapshot(
    *, providers: Sequence[Any] = (), vaults: Sequence[Vault] = (), at: datetime
) -> list[LogEntry]:
    """Append the complete current records of these providers (ids) and vaults as
    ``state.snapshot`` entries: how a registry that logged before entries carried records
    migrates forward (directory migration 0003) without rewriting any entry."""
    items: list[LogItem] = [
        (LogKind.STATE_SNAPSHOT, {"provider": str(pid)}, [provider_record(pid)])
        for pid in providers
    ]
    items += [
        (
            LogKind.STATE_SNAPSHOT,
            {"vault": vault.number, "provider": str(vault.provider_id)},
            [vault_record(vault)],
        )
        for vault in vaults
    ]
    return append_log_many(items, at=at) if items else []


def _schedule_checkpoint() -> None:
    # Robust: the change is committed whatever happens to the checkpoint. A transaction with
    # several appends schedules several calls; all but the first find a fresh checkpoint.
    transaction.on_commit(checkpoints.publish_soon, robust=True)


def reason_data(reason: str) -> dict[str, str]:
    """The audit data of an optional reason: ``{"reason": …}``, or nothing when none given."""
    reason = (reason or "").strip()
    return {"reason": reason} if reason else {}


def required_reason(reason: str) -> str:
    """A reason an admin must give for a change (stripped), or 400 ``validation_error``."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(
            ErrorCode.VALIDATION_ERROR,
            "A reason is required for this change.",
            extra={"errors": [{"field": "reason", "code": "required"}]},
        )
    if len(reason) > 2000:
        raise InvalidInput(
            ErrorCode.VALIDATION_ERROR,
            "A reason is at most 2000 characters long.",
            extra={"errors": [{"field": "reason", "code": "max_length"}]},
        )
    return reason


def _audit_event(
    actor: Actor,
    action: str,
    target: models.Model,
    at: datetime,
    data: dict[str, Any] | None,
    log_entry: LogEntry | None,
) -> AuditEvent:
    return AuditEvent(
        created_at=at,
        actor=actor.label,
        actor_user=actor.user,
        actor_token=actor.token,
        action=action,
        target_type=target._meta.model_name,
        target_id=str(target.pk),
        data=data or {},
        log_sequence=log_entry.sequence if log_entry else None,
    )


def record_audit(
    actor: Actor,
    action: str,
    target: models.Model,
    *,
    at: datetime,
    data: dict[str, Any] | None = None,
    log_entry: LogEntry | None = None,
) -> AuditEvent:
    """Record who did what; must run inside the transaction of the change it records."""
    event = _audit_event(actor, action, target, at, data, log_entry)
    event.save(force_insert=True)
    return event


def record_audit_many(
    actor: Actor,
    action: str,
    targets: Sequence[models.Model],
    *,
    at: datetime,
    data: dict[str, Any] | None = None,
    log_entries: Sequence[LogEntry] | None = None,
) -> list[AuditEvent]:
    """``record_audit`` for each of ``targets`` (with its log entry, if given), in one insert
    per thousand rows: a change of 10,000 vaults audits each of them."""
    entries = log_entries if log_entries is not None else [None] * len(targets)
    events = [
        _audit_event(actor, action, target, at, data, entry)
        for target, entry in zip(targets, entries, strict=True)
    ]
    return AuditEvent.objects.bulk_create(events, batch_size=1000)
